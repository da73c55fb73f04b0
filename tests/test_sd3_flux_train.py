"""Textual inversion on the tiny SD3 and Flux models: frozen weights, encoder choice, the flow objective."""

from __future__ import annotations

import pytest
import torch

import ticraft
from ticraft.models.load import load_backbone
from ticraft.training.config import TrainConfig
from ticraft.training.data import load_images
from ticraft.training.flow import FlowTrainer, make_trainer
from ticraft.training.loop import TrainError

# one vector: the loss and encoder checks below index the placeholder's single row (the fast preset learns 3)
FAST = dict(steps=3, batch_size=2, lr=5e-2, lr_schedule="constant", warmup_steps=0, log_every=1, previews=0,
            resolution=16, num_vectors=1)


@pytest.fixture
def images(tmp_path):
    from train_images import write_images

    return write_images(tmp_path / "images", n=2, size=16)


def _state(bb):
    return {f"{i}.{k}": v.clone() for i, m in enumerate(bb.modules()) for k, v in m.state_dict().items()}


@pytest.mark.parametrize("fixture", ["tiny_sd3_dir", "tiny_flux_dir"])
def test_every_encoder_learns_and_the_model_stays_bitwise_frozen(fixture, request, images, one_torch_thread):
    bb = load_backbone(str(request.getfixturevalue(fixture)))
    before = _state(bb)
    init = {k: v[0] for k, v in bb.token_vector("toy").items()}
    concept = ticraft.train(images, "<thing>", "toy", model=bb, **FAST)
    after = _state(bb)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(e.table.grad is None for e in bb.encoders)
    assert set(concept.vectors) == set(bb.dims) and concept.family == bb.family
    for key, vec in concept.vectors.items():  # every encoder's vector moved away from the initializer
        assert not torch.allclose(vec[0], init[key]), key


def test_encoders_t5_learns_only_in_t5(tiny_sd3_dir, images, one_torch_thread):
    bb = load_backbone(str(tiny_sd3_dir))
    init = {k: v[0] for k, v in bb.token_vector("toy").items()}
    concept = ticraft.train(images, "<thing>", "toy", model=bb, encoders="t5", **FAST)
    assert not torch.allclose(concept.vectors["t5"][0], init["t5"])
    assert torch.equal(concept.vectors["clip_l"][0], init["clip_l"])
    assert torch.equal(concept.vectors["clip_g"][0], init["clip_g"])
    clip_only = ticraft.train(images, "<thing>", "toy", model=bb, encoders="clip", **FAST)
    assert torch.equal(clip_only.vectors["t5"][0], init["t5"])
    assert not torch.allclose(clip_only.vectors["clip_g"][0], init["clip_g"])


def test_flow_options_are_refused_on_unet_models(tiny_sd_dir, images, one_torch_thread):
    bb = load_backbone(str(tiny_sd_dir))
    cfg = TrainConfig.from_options(**FAST, encoders="t5")
    with pytest.raises(TrainError, match="SD3/Flux"):
        make_trainer(bb, load_images(images), "<thing>", "toy", cfg)


@pytest.mark.parametrize("bias", ["earlier", "later"])
def test_a_timestep_bias_is_refused_on_flow_models(bias, tiny_sd3_dir, images, one_torch_thread):
    bb = load_backbone(str(tiny_sd3_dir))
    cfg = TrainConfig.from_options(**FAST, timestep_bias=bias)
    with pytest.raises(TrainError, match=f"timestep_bias {bias} applies to SD-1.x/2.x/XL.*weighting_scheme"):
        make_trainer(bb, load_images(images), "<thing>", "toy", cfg)


def _trainer(folder, images, **options) -> FlowTrainer:
    bb = load_backbone(str(folder))
    cfg = TrainConfig.from_options(**{**FAST, **options})
    tr = make_trainer(bb, load_images(images), "<thing>", "toy", cfg)
    assert isinstance(tr, FlowTrainer)
    return tr


@pytest.mark.parametrize("fixture, scheme, middle", [("tiny_sd3_dir", "logit_normal", 0.727),
                                                     ("tiny_flux_dir", "none", 0.5)])
def test_timestep_density_follows_the_scripts_defaults(fixture, scheme, middle, request, images, one_torch_thread):
    """SD3 draws u ~ logit-normal(0, 1) (P(0.25 < u < 0.75) = 0.727), Flux uniformly (0.5)."""
    tr = _trainer(request.getfixturevalue(fixture), images)
    try:
        assert tr.weighting == scheme
        t = torch.cat([tr._draw(2)["t"] for _ in range(2000)])
        share = ((t >= 250) & (t < 750)).float().mean().item()
        assert abs(share - middle) < 0.03, share
    finally:
        tr.close()


@pytest.mark.parametrize("scheme", ["auto", "sigma_sqrt"])
def test_sd3_loss_is_the_scripts_preconditioned_flow_loss(scheme, tiny_sd3_dir, images, one_torch_thread):
    """Recompute the loss the way train_dreambooth_lora_sd3.py does, from the pipeline's own encode_prompt."""
    from ticraft.generate.sample import prepare_pipeline

    tr = _trainer(tiny_sd3_dir, images, latent_sample=False, weighting_scheme=scheme)
    try:
        rows, t = torch.tensor([0, 1]), torch.tensor([100, 900])
        noise = torch.randn(2, *tr.cache.mean.shape[1:], generator=torch.Generator().manual_seed(0))
        prompt = tr.prompts.prompts[0]
        ids = {k: v[:1].expand(2, -1) for k, v in tr._tokenize([prompt], 1).items()}
        with torch.no_grad():
            ours = tr._loss(ids, None, rows, t, noise, None)
            pipe = prepare_pipeline(tr.bb)
            emb, _, pooled, _ = pipe.encode_prompt([tr.preview_prompt(prompt)] * 2, None, None,
                                                   do_classifier_free_guidance=False)
            sched = pipe.scheduler.__class__.from_config(pipe.scheduler.config)
            timesteps = sched.timesteps[t]
            sigmas = torch.stack([sched.sigmas[(sched.timesteps == s).nonzero().item()] for s in timesteps])
            sigmas = sigmas.view(-1, 1, 1, 1)
            z = tr.cache.mean[rows]
            noisy = sigmas * noise + (1 - sigmas) * z
            pred = tr.bb.unet(hidden_states=noisy, timestep=timesteps, encoder_hidden_states=emb,
                              pooled_projections=pooled, return_dict=False)[0]
            pred = pred * (-sigmas) + noisy
            weight = sigmas ** -2.0 if scheme == "sigma_sqrt" else torch.ones_like(sigmas)
            ref = (weight * (pred - z) ** 2).reshape(2, -1).mean(1)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
        assert sched.config.shift == 3.0 and not torch.allclose(sigmas.flatten(), timesteps / 1000 * 0 + t / 1000)
    finally:
        tr.close()


def test_same_seed_same_vectors(tiny_flux_dir, images, one_torch_thread):
    bb = load_backbone(str(tiny_flux_dir))
    a = ticraft.train(images, "<thing>", "toy", model=bb, **FAST)
    b = ticraft.train(images, "<thing>", "toy", model=bb, **FAST)
    c = ticraft.train(images, "<thing>", "toy", model=bb, **{**FAST, "seed": 1})
    assert all(torch.equal(a.vectors[k], b.vectors[k]) for k in a.vectors)
    assert not torch.equal(a.vectors["t5"], c.vectors["t5"])


def test_cli_train_encoders_t5_writes_a_comfyui_file(tiny_flux_dir, images, tmp_path, one_torch_thread):
    from typer.testing import CliRunner

    from ticraft.cli.main import app
    from ticraft.formats import detect_layout, read_concept

    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "train", str(images), "--token", "<thing>", "--init", "toy", "--model", str(tiny_flux_dir), "--steps", "2",
        "--batch", "2", "--resolution", "16", "--previews", "0", "--encoders", "t5", "--no-library", "--out", str(out),
        "--device", "cpu"])
    assert result.exit_code == 0, result.output
    [file] = sorted(out.glob("*.safetensors"))
    assert detect_layout(file) == "comfyui"
    concept = read_concept(file)
    bb = load_backbone(str(tiny_flux_dir))
    assert torch.equal(concept.vectors["clip_l"][0], bb.token_vector("toy")["clip_l"][0])  # not trained
    assert not torch.equal(concept.vectors["t5"][0], bb.token_vector("toy")["t5"][0])


def test_resume_repeats_the_uninterrupted_run(tiny_sd3_dir, images, one_torch_thread):
    """The flow timestep draw lives on the trainer's host generator, so a resumed run is the same run."""
    full = _trainer(tiny_sd3_dir, images)
    try:
        for _ in range(4):
            full.train_step()
        want = full.result_vectors()
    finally:
        full.close()
    first = _trainer(tiny_sd3_dir, images)
    try:
        for _ in range(2):
            first.train_step()
        state = first.state_dict()
    finally:
        first.close()
    second = _trainer(tiny_sd3_dir, images)
    try:
        second.load_state_dict(state)
        for _ in range(2):
            second.train_step()
        got = second.result_vectors()
    finally:
        second.close()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_untrained_encoders_run_without_autograd(tiny_flux_dir, images, one_torch_thread):
    """--encoders clip: T5 runs under no_grad (no activations kept), CLIP with grad; the loss is unchanged."""
    tr = _trainer(tiny_flux_dir, images, encoders="clip")
    seen: dict[str, bool] = {}
    hooks = [e.model.register_forward_pre_hook(lambda m, a, key=e.key: seen.__setitem__(key, torch.is_grad_enabled()))
             for e in tr.bb.encoders]
    try:
        draw = tr._draw(2)
        inputs = tr._batch_inputs(draw, 1)
        loss = tr._loss(*inputs)
        assert seen == {"clip_l": True, "t5": False}
        tr._frozen_keys = frozenset()
        again = tr._loss(*inputs)
        assert seen == {"clip_l": True, "t5": True} and torch.equal(loss, again)
    finally:
        for h in hooks:
            h.remove()
        tr.close()
