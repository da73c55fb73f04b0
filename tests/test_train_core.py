"""Trainer invariants on the tiny offline SD/SDXL models (CPU): frozen table, determinism, resume,
progressive extension, per-image tokens, regularisation, multi-vector prompts, the loss itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_images import write_images

import ticraft
from ticraft.models.load import load_backbone
from ticraft.training.config import ConfigError, TrainConfig
from ticraft.training.data import load_images
from ticraft.training.loop import Trainer

# init_search 0: these invariants are stated against the given initializer (tests/test_init_search.py has the search);
# num_vectors 1: and for one placeholder row (the fast preset learns 3; multi-vector tests ask for theirs)
FAST = dict(steps=6, batch_size=4, lr=1e-2, lr_schedule="constant", warmup_steps=0, log_every=2, previews=0,
            init_search=0, num_vectors=1)


@pytest.fixture
def images(tmp_path) -> Path:
    return write_images(tmp_path / "images", n=3)


def trainer(model_dir: Path, images: Path, **options) -> Trainer:
    init = options.pop("init", "toy cat")
    bb = load_backbone(str(model_dir))
    cfg = TrainConfig.from_options(**{**FAST, **options})
    return Trainer(bb, load_images(images, captions=cfg.captions), "<thing>", init, cfg)


def test_only_the_new_rows_change(tiny_sd_dir, images):
    bb = load_backbone(str(tiny_sd_dir))
    enc = bb.encoders[0]
    table = enc.table.detach().clone()
    weights = {k: v.clone() for k, v in enc.model.state_dict().items()}
    unet = {k: v.clone() for k, v in bb.unet.state_dict().items()}
    concept = ticraft.train(images, "<thing>", "toy", model=bb, **FAST)
    assert torch.equal(enc.table, table)  # bitwise
    assert all(torch.equal(v, weights[k]) for k, v in enc.model.state_dict().items())
    assert all(torch.equal(v, unet[k]) for k, v in bb.unet.state_dict().items())
    assert enc.table.grad is None and not enc.table.requires_grad
    start = table[enc.tokenizer("toy", add_special_tokens=False).input_ids[0]]
    assert not torch.allclose(concept.vectors["clip"][0], start)  # the learned row moved
    assert concept.family == bb.family and concept.meta["steps"] == FAST["steps"]
    assert concept.meta["model_fingerprint"] == bb.fingerprint()
    assert [s for s, _ in concept.meta["loss_curve"]] == [2, 4, 6]
    assert len(concept.meta["images"]) == 3 and all(len(i["sha256"]) == 64 for i in concept.meta["images"])


def test_same_seed_same_vectors_and_callback_contract(tiny_sd_dir, images):
    seen = []

    def callback(step, total, loss, vectors):
        seen.append((step, total, loss, {k: tuple(v.shape) for k, v in vectors.items()}))

    a = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), callback=callback, **FAST)
    b = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), **FAST)
    c = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), **{**FAST, "seed": 1})
    assert torch.equal(a.vectors["clip"], b.vectors["clip"])
    assert not torch.equal(a.vectors["clip"], c.vectors["clip"])
    assert [s[0] for s in seen] == list(range(1, 7)) and all(s[1] == 6 for s in seen)
    assert [s[2] is None for s in seen] == [True, False] * 3  # loss read every log_every=2 steps only
    assert all(s[3] == {"clip": (1, 32)} for s in seen)


def test_callback_can_stop(tiny_sd_dir, images):
    concept = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), callback=lambda s, *_: s == 3, **FAST)
    assert concept.meta["steps"] == 3 and concept.meta["stopped"] == "callback"


def test_resume_equals_uninterrupted(tiny_sd_dir, images, tmp_path):
    opts = dict(FAST, steps=8, num_vectors=2, progressive=3, per_image=True, reg_weight=0.1, save_every=4)
    full = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), output_dir=tmp_path / "a", **opts)
    ckpt = tmp_path / "a" / "checkpoint-0000004.pt"
    assert ckpt.is_file() and (tmp_path / "a" / "checkpoint-0000008.pt").is_file()
    resumed = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), output_dir=tmp_path / "b",
                            resume=ckpt, **opts)
    assert torch.equal(full.vectors["clip"], resumed.vectors["clip"])
    assert full.meta["loss_curve"] == resumed.meta["loss_curve"]
    # a folder resumes from its latest checkpoint (here: the end, so nothing is left to do)
    again = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), resume=tmp_path / "a",
                          **{**opts, "save_every": 0})
    assert torch.equal(full.vectors["clip"], again.vectors["clip"])


def test_progressive_adds_vectors_at_the_configured_steps(tiny_sd_dir, images):
    tr = trainer(tiny_sd_dir, images, num_vectors=3, progressive=3, steps=9)
    init = tr.init_vectors["clip"]
    counts = []
    for step in range(9):
        tr.train_step()
        counts.append(tr.active)
        if step == 2:  # rows 1 and 2 have not joined yet: untouched, at their initializer values
            assert torch.equal(tr.rows["clip"][1].detach().cpu(), init[1:2])
            assert tr.rows["clip"][1].grad is None
            assert not torch.equal(tr.rows["clip"][0].detach().cpu(), init[0:1])
    assert counts == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert not torch.equal(tr.rows["clip"][2].detach().cpu(), init[2:3])  # joined at step 6 and moved
    assert tr.current_vectors()["clip"].shape == (3, 32)
    tr.close()


def test_multi_vector_prompts_expand_and_init_spreads(tiny_sd_dir, images):
    tr = trainer(tiny_sd_dir, images, num_vectors=3, init="toy cat")
    tok = tr.bb.encoders[0].tokenizer
    ids = tok.convert_tokens_to_ids(["<thing>", "<thing>_1", "<thing>_2"])
    first = tr._tables[3]["clip"][0].tolist()  # "a photo of a <thing>"
    i = first.index(ids[0])
    assert first[i:i + 3] == ids
    table = tr.bb.encoders[0].table
    toy, cat = tok("toy cat", add_special_tokens=False).input_ids
    assert torch.equal(tr.init_vectors["clip"], table[[toy, cat, toy]])  # vector i ← token i mod n
    one = trainer(tiny_sd_dir, images, num_vectors=1, init="toy cat")
    assert torch.allclose(one.init_vectors["clip"][0], table[[toy, cat]].mean(0))  # one vector: the mean
    for _ in range(2):
        tr.train_step()
    moved = (tr.current_vectors()["clip"].cpu() - tr.init_vectors["clip"]).norm(dim=1)
    assert (moved > 0).all()
    tr.close()
    one.close()


def test_per_image_tokens_are_learned_and_dropped(tiny_sd_dir, images):
    tr = trainer(tiny_sd_dir, images, per_image=True)
    assert tr.image_tokens == ["<thing@img0>", "<thing@img1>", "<thing@img2>"]
    assert tr.prompts.prompts[0] == "a photo of a <thing> with <thing@img0>"
    assert all(tr.prompts.prompts[j].endswith("<thing@img1>") for j in tr.prompts.choices[1].tolist())
    before = [p.detach().clone() for p in tr.image_rows["clip"]]
    for _ in range(4):
        tr.train_step()
    assert all(not torch.equal(p.detach(), b) for p, b in zip(tr.image_rows["clip"], before))
    assert set(tr.result_vectors()) == {"clip"} and tr.result_vectors()["clip"].shape == (1, 32)
    tr.close()
    concept = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), per_image=True, **FAST)
    plain = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), **FAST)
    assert concept.num_vectors == 1 and concept.meta["per_image_tokens_dropped"] == 3
    assert not torch.equal(concept.vectors["clip"], plain.vectors["clip"])


def test_regularisation_pulls_towards_the_initializer(tiny_sd_dir, images):
    plain = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), **FAST)
    reg = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), reg_weight=50.0, **FAST)
    bb = load_backbone(str(tiny_sd_dir))
    start = bb.token_vector("toy")["clip"]
    assert (reg.vectors["clip"] - start).norm() < 0.5 * (plain.vectors["clip"] - start).norm()


def test_v_prediction_loss_matches_diffusers(tiny_sd_dir, images):
    """The loss is diffusers' objective: add_noise + get_velocity on a DDPM view of the scheduler."""
    from diffusers import DDIMScheduler, DDPMScheduler

    bb = load_backbone(str(tiny_sd_dir))
    bb.scheduler = DDIMScheduler.from_config(bb.scheduler.config, prediction_type="v_prediction",
                                             rescale_betas_zero_snr=True, timestep_spacing="trailing")
    cfg = TrainConfig.from_options(**FAST, latent_sample=False)
    tr = Trainer(bb, load_images(images), "<thing>", "toy", cfg)
    assert tr.prediction_type == "v_prediction"
    rows, t = torch.tensor([0, 3, 5]), torch.tensor([0, 500, 999])
    noise = torch.randn(3, *tr.cache.mean.shape[1:], generator=torch.Generator().manual_seed(0))
    ids = {"clip": tr._tables[1]["clip"][:3]}
    with torch.no_grad():
        ours = tr._loss(ids, None, rows, t, noise, None)
        ddpm = DDPMScheduler.from_config(bb.scheduler.config)
        z = tr.cache.mean[rows]
        hidden = bb.encoders[0].model(ids["clip"])[0]
        pred = bb.unet(ddpm.add_noise(z, noise, t), t, encoder_hidden_states=hidden).sample
        ref = ((pred - ddpm.get_velocity(z, noise, t)) ** 2).mean((1, 2, 3))
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-6)
    assert ddpm.alphas_cumprod[-1] < 1e-6  # zero terminal SNR reached the training schedule
    tr.close()


def test_mask_weights_the_loss(tiny_sd_dir, tmp_path):
    folder = write_images(tmp_path / "rgba", n=3, alpha=True)
    tr = trainer(tiny_sd_dir, folder, mask=True)
    assert tr.cache.mask is not None and tr.cache.mask.shape[1] == 1
    assert 0.0 < float(tr.cache.mask.mean()) < 1.0
    tr.train_step()
    tr.close()


def test_captions_become_prompts(tiny_sd_dir, images):
    (images / "img0.txt").write_text("a photo of {} on the beach")
    (images / "img1.txt").write_text("a red cat")
    (images / "img2.txt").write_text("<thing> in style")
    tr = trainer(tiny_sd_dir, images, captions=True)
    assert tr.prompts.prompts == ["a photo of <thing> on the beach", "<thing>, a red cat", "<thing> in style"]
    tr.train_step()
    tr.close()


def test_sdxl_trains_both_encoders(tiny_sdxl_dir, images, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    bb = load_backbone(str(tiny_sdxl_dir))
    tables = {e.key: e.table.detach().clone() for e in bb.encoders}
    start = {k: v.clone() for k, v in bb.token_vector("toy").items()}
    concept = ticraft.train(images, "<thing>", "toy", model=bb, output_dir=tmp_path / "run",
                            **{**FAST, "steps": 3, "batch_size": 2})
    assert set(concept.vectors) == {"clip_l", "clip_g"} and concept.dims == {"clip_l": 32, "clip_g": 64}
    for key in ("clip_l", "clip_g"):
        assert torch.equal(bb.encoder(key).table, tables[key])
        assert not torch.allclose(concept.vectors[key], start[key])
    # diffusers' SDXL recipe: one load_textual_inversion call per encoder
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl_dir)
    for file, enc, tok, key in (("thing.safetensors", pipe.text_encoder, pipe.tokenizer, "clip_l"),
                                ("thing_2.safetensors", pipe.text_encoder_2, pipe.tokenizer_2, "clip_g")):
        pipe.load_textual_inversion(str(tmp_path / "run" / file), token="<thing>", text_encoder=enc, tokenizer=tok)
        row = enc.get_input_embeddings().weight[tok.convert_tokens_to_ids("<thing>")]
        assert torch.equal(row.detach(), concept.vectors[key][0])


def test_sdxl_text_conditioning_matches_the_pipeline(tiny_sdxl_dir, images):
    """Penultimate hidden states of both encoders + the pooled projection, as encode_prompt builds them."""
    bb = load_backbone(str(tiny_sdxl_dir))
    tr = Trainer(bb, load_images(images), "<thing>", "toy", TrainConfig.from_options(**FAST))
    pipe = bb.pipeline()
    prompt = tr.preview_prompt("a photo of a <thing>")
    with torch.no_grad():
        ref, _, ref_pooled, _ = pipe.encode_prompt(prompt, device="cpu", num_images_per_prompt=1,
                                                   do_classifier_free_guidance=False)
        ids = tr._tokenize(["a photo of a <thing>"], 1)
        ours, pooled = tr._encode_text(ids)
    assert torch.allclose(ours, ref, atol=1e-6) and torch.allclose(pooled, ref_pooled, atol=1e-6)
    assert tr.cache.time_ids.shape == (3 * 2, 6)  # (orig h, w, crop top, left, target h, w) per variant
    assert tr.cache.time_ids[0].tolist() == [20.0, 20.0, 0.0, 0.0, 16.0, 16.0]
    tr.close()


@pytest.mark.slow
def test_compiled_loss_matches_eager(tiny_sd_dir, images):
    """torch.compile traces the whole loss (text encoder + UNet, forward and input-only backward);
    aot_eager checks the tracing without a C++ toolchain. GPU runs use inductor (benchmarks/gpu_suite.py)."""
    eager = trainer(tiny_sd_dir, images, steps=3)
    compiled = trainer(tiny_sd_dir, images, steps=3, compile="default", compile_backend="aot_eager")
    for _ in range(3):
        eager.train_step()
        compiled.train_step()
    assert torch.allclose(eager.current_vectors()["clip"], compiled.current_vectors()["clip"], atol=1e-5)
    eager.close()
    compiled.close()


def test_timestep_bias_moves_the_timesteps_and_nothing_else_of_the_draw(tiny_sd_dir, images):
    """earlier: t = T·u² (mean T/3), later: its mirror (2T/3), none: uniform (T/2); anything else is one error."""
    means, first = {}, {}
    for bias in ("none", "earlier", "later"):
        tr = trainer(tiny_sd_dir, images, timestep_bias=bias)
        try:
            draws = [tr._draw(4) for _ in range(250)]
            first[bias] = draws[0]
            means[bias] = torch.cat([d["t"] for d in draws]).float().mean().item() / tr.num_timesteps
        finally:
            tr.close()
    with pytest.raises(ConfigError, match="timestep_bias must be one of none, earlier, later; got 'low'"):
        TrainConfig.from_options(timestep_bias="low")
    assert means["earlier"] < 0.4 and 0.43 < means["none"] < 0.57 and means["later"] > 0.6, means
    for bias in ("earlier", "later"):  # the same pictures, prompts and noise in a step; only its timesteps moved
        assert all(torch.equal(first[bias][k], first["none"][k]) for k in ("rows", "prompt", "noise"))
