"""Per-layer tokens (P+/XTI): layer counts and order, routing (each cross-attention layer reads its own
encoding), training on tiny SD / SDXL / the toy model (frozen weights, exact resume), sampling, the library,
kohya's XTI file layout, and the one-sentence errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from train_images import write_images

import ticraft
from ticraft.concept import Concept
from ticraft.models.layers import (
    LayerLayoutError,
    _LayerProcessor,
    cross_attention_layers,
    layer_count,
)
from ticraft.models.load import load_backbone

# one vector per layer, the XTI paper's layout (the fast preset learns 3 per layer)
FAST = dict(steps=4, batch_size=2, lr=1e-2, lr_schedule="constant", warmup_steps=0, log_every=2, previews=0,
            num_vectors=1)


@pytest.fixture
def images(tmp_path) -> Path:
    return write_images(tmp_path / "images", n=3)


def _sd15_shaped_unet():
    """SD-1.x's block layout with tiny widths (the layer count and names do not depend on the widths)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(8, 8, 8, 8), layers_per_block=2, sample_size=8, norm_num_groups=4, attention_head_dim=2,
        cross_attention_dim=8,
    )


def test_sd1_has_kohyas_16_layers_in_kohyas_order():
    from ticraft.formats.xti import KOHYA_LAYERS

    names = cross_attention_layers(_sd15_shaped_unet())
    assert len(names) == 16 == len(KOHYA_LAYERS)
    # IN01 IN02 (down 0) IN04 IN05 (down 1) IN07 IN08 (down 2) MID OUT03-05 (up 1) OUT06-08 (up 2) OUT09-11 (up 3)
    blocks = [n.split(".attentions")[0] for n in names]
    assert blocks == (["down_blocks.0"] * 2 + ["down_blocks.1"] * 2 + ["down_blocks.2"] * 2 + ["mid_block"]
                      + ["up_blocks.1"] * 3 + ["up_blocks.2"] * 3 + ["up_blocks.3"] * 3)


def test_layer_counts_of_the_tiny_models_and_the_toy(bb, tiny_sdxl_dir):
    assert layer_count(bb.unet) == 4
    assert layer_count(load_backbone(str(tiny_sdxl_dir)).unet) == 4
    import json

    from ticraft.models.load import TOY_WEIGHTS

    cfg = json.loads((TOY_WEIGHTS / "unet" / "config.json").read_text())
    toy = load_backbone("toy")
    # counted from the loaded UNet: 2 down blocks with attention + mid + 2 up blocks × (layers_per_block + 1)
    expected = 2 * cfg["layers_per_block"] + 1 + 2 * (cfg["layers_per_block"] + 1)
    assert layer_count(toy.unet) == expected == 7


def _xti(bb, rows: torch.Tensor, token: str = "<lay>") -> Concept:
    layers = layer_count(bb.unet)
    return Concept(token, {bb.encoders[0].key: rows}, family=bb.family, meta={"method": "xti", "xti_layers": layers})


def test_each_layer_reads_the_encoding_of_its_own_vectors(bb):
    """Spy on every cross-attention layer: layer l sees exactly the prompt encoded with layer l's vector."""
    L, D = layer_count(bb.unet), bb.encoders[0].dim
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(L, D, generator=g) * 0.3
    enc = bb.encoders[0]
    prompt = "a photo of <lay>"

    def encode(text: str) -> torch.Tensor:
        ids = enc.tokenizer([text], padding="max_length", max_length=enc.tokenizer.model_max_length,
                            truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            return enc.model(input_ids=ids)[0]

    plain = []
    for layer in range(L):  # reference: an ordinary concept holding layer l's vector
        bb.load_concept(Concept("<lay>", {"clip": rows[layer:layer + 1]}, family=bb.family))
        plain.append(encode(prompt))
        bb.unload_concept("<lay>")
    concept = _xti(bb, rows)
    bb.load_concept(concept)
    seen: dict[int, torch.Tensor] = {}
    procs = [m.processor for m in (dict(bb.unet.named_modules())[n] for n in cross_attention_layers(bb.unet))]
    assert all(isinstance(p, _LayerProcessor) for p in procs)
    for p in procs:
        inner = p.inner

        def spy(attn, hidden, ehs=None, *a, _inner=inner, _i=p.index, **k):
            seen[_i] = ehs
            return _inner(attn, hidden, ehs, *a, **k)

        p.inner = spy
    packed = encode(prompt)
    assert packed.shape[1] == L * enc.tokenizer.model_max_length
    with torch.no_grad():
        bb.unet(torch.zeros(1, 4, 8, 8), torch.tensor([10]), encoder_hidden_states=packed)
    for layer in range(L):
        assert torch.allclose(seen[layer], plain[layer], atol=1e-5), layer
    assert not torch.allclose(plain[0], plain[1])
    for p in procs:
        p.inner = p.inner.__kwdefaults__["_inner"]
    bb.unload_concept("<lay>")
    # the last per-layer concept out: the original processors are back
    assert not any(isinstance(dict(bb.unet.named_modules())[n].processor, _LayerProcessor)
                   for n in cross_attention_layers(bb.unet))


def test_equal_layers_sample_like_the_plain_concept(bb):
    from ticraft.generate.sample import generate
    from ticraft.generate.specs import SampleSpec

    L = layer_count(bb.unet)
    row = torch.randn(1, bb.encoders[0].dim, generator=torch.Generator().manual_seed(1)) * 0.3
    spec = [SampleSpec("a photo of <lay> and a dog", negative="blurry", seed=3, steps=3)]
    plain = np.asarray(generate(bb, spec, concepts=[Concept("<lay>", {"clip": row}, family=bb.family)])[0], int)
    bb.unload_concept("<lay>")
    layered = np.asarray(generate(bb, spec, concepts=[_xti(bb, row.repeat(L, 1))])[0], int)
    bb.unload_concept("<lay>")
    assert np.abs(plain - layered).max() <= 1  # same conditioning, batched differently
    other = row.repeat(L, 1)
    other[2] += torch.randn(other.shape[1], generator=torch.Generator().manual_seed(2))  # (a constant shift
    # of every component would vanish in CLIP's layer norms)
    changed = np.asarray(generate(bb, spec, concepts=[_xti(bb, other)])[0], int)
    bb.unload_concept("<lay>")
    assert np.abs(plain - changed).max() > 1


def test_wrong_layer_count_is_one_sentence(bb):
    c = Concept("<lay>", {"clip": torch.zeros(6, bb.encoders[0].dim)}, family=bb.family,
                meta={"method": "xti", "xti_layers": 3})
    with pytest.raises(LayerLayoutError, match=r"3 cross-attention layers, but model .* has 4"):
        bb.load_concept(c)
    assert "<lay>" not in bb.loaded_concepts


def _frozen(bb) -> dict[str, torch.Tensor]:
    out = {f"unet.{k}": v.clone() for k, v in bb.unet.state_dict().items()}
    for e in bb.encoders:
        out.update({f"{e.key}.{k}": v.clone() for k, v in e.model.state_dict().items()})
    return out


def _assert_frozen(bb, before: dict[str, torch.Tensor]) -> None:
    after = _frozen(bb)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_xti_trains_every_layer_frozen_model_and_exact_resume(tiny_sd_dir, images, tmp_path):
    bb = load_backbone(str(tiny_sd_dir))
    before = _frozen(bb)
    opts = dict(FAST, steps=6, save_every=3, method="xti")
    full = ticraft.train(images, "<thing>", "toy", model=bb, output_dir=tmp_path / "a", **opts)
    _assert_frozen(bb, before)
    L = layer_count(bb.unet)
    assert full.layers == L and full.num_vectors == 1 and full.vectors["clip"].shape == (L, 32)
    assert full.meta["method"] == "xti" and len(full.meta["xti_layer_modules"]) == L
    init = bb.token_vector("toy")["clip"]
    moved = (full.vectors["clip"] - init).norm(dim=1)
    assert (moved > 0).all()  # every layer learned
    assert not torch.equal(full.vectors["clip"][0], full.vectors["clip"][1])  # and each its own way
    resumed = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), output_dir=tmp_path / "b",
                            resume=tmp_path / "a" / "checkpoint-0000003.pt", **opts)
    assert torch.equal(full.vectors["clip"], resumed.vectors["clip"])
    assert full.meta["loss_curve"] == resumed.meta["loss_curve"]
    assert "_xti_router" not in bb.extra  # training leaves no routing behind


def test_xti_with_two_vectors_and_the_library(tiny_sd_dir, images, tmp_path):
    from ticraft.library import Library

    lib = Library(tmp_path / "lib")
    c = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), library=lib,
                      **dict(FAST, method="xti", num_vectors=2))
    assert c.num_vectors == 2 and c.vectors["clip"].shape == (8, 32)
    back = Library(tmp_path / "lib").get("<thing>")
    assert back.layers == 4 and back.num_vectors == 2 and back.meta["method"] == "xti"
    assert torch.equal(back.vectors["clip"], c.vectors["clip"])
    entry = next(e for e in Library(tmp_path / "lib").entries() if e.token == "<thing>")
    assert entry.method == "xti"


def test_xti_on_sdxl_both_encoders(tiny_sdxl_dir, images):
    from ticraft.generate.sample import generate
    from ticraft.generate.specs import SampleSpec

    bb = load_backbone(str(tiny_sdxl_dir))
    before = _frozen(bb)
    c = ticraft.train(images, "<thing>", "toy", model=bb, **dict(FAST, method="xti"))
    _assert_frozen(bb, before)
    L = layer_count(bb.unet)
    assert c.vectors["clip_l"].shape == (L, 32) and c.vectors["clip_g"].shape == (L, 64)
    for key in ("clip_l", "clip_g"):
        assert not torch.equal(c.vectors[key][0], c.vectors[key][L - 1])
    img = generate(bb, [SampleSpec("a photo of <thing>", seed=1, steps=2)], concepts=[c])[0]
    assert img.size == (16, 16)


def test_xti_on_the_toy_model(images):
    from ticraft.generate.sample import generate
    from ticraft.generate.specs import SampleSpec

    bb = load_backbone("toy")
    before = _frozen(bb)
    c = ticraft.train(images, "<thing>", "shape", model=bb, **dict(FAST, steps=2, method="xti"))
    _assert_frozen(bb, before)
    assert c.layers == 7 and c.family == "toy"
    img = generate(bb, [SampleSpec("a photo of <thing>", seed=1, steps=2)], concepts=[c])[0]
    assert np.asarray(img).std() > 0


def test_unknown_method_and_progressive_xti_are_one_sentence():
    from ticraft.training.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="method must be one of plain, xti, directional; got 'pplus'"):
        TrainConfig.from_options(method="pplus")
    with pytest.raises(ConfigError, match="progressive extension is not supported with method xti"):
        TrainConfig.from_options(method="xti", num_vectors=2, progressive=3)


def test_per_layer_arithmetic_keeps_the_layout(bb):
    L = layer_count(bb.unet)
    a = _xti(bb, torch.randn(2 * L, 32), "<a>")
    b = _xti(bb, torch.randn(2 * L, 32), "<b>")
    mix = 0.5 * a + 0.5 * b
    assert mix.layers == L and mix.num_vectors == 2
    first = a[0]
    assert first.layers == L and torch.equal(first.vectors["clip"], a.vectors["clip"].reshape(L, 2, 32)[:, 0])
    mean = a.mean_vector()
    assert torch.allclose(mean.vectors["clip"], a.vectors["clip"].reshape(L, 2, 32).mean(1))
    plain = Concept("<p>", {"clip": torch.randn(2, 32)}, family=bb.family)
    with pytest.raises(Exception, match="layer"):
        _ = a + plain


# ------------------------------------------------------------------------------------------- files
def test_kohya_xti_files_round_trip_and_read_kohyas_own(tmp_path):
    from safetensors.torch import save_file

    from ticraft.formats import FormatError, detect_layout, read_concept, write_concept
    from ticraft.formats.xti import KOHYA_LAYERS

    rows = torch.randn(16 * 2, 768, dtype=torch.float32)
    c = Concept("<k>", {"clip": rows}, meta={"method": "xti", "xti_layers": 16, "steps": 9})
    for suffix in (".safetensors", ".pt"):
        [path] = write_concept(c, tmp_path / f"k{suffix}", layout="kohya-xti")
        assert detect_layout(path) == "kohya-xti"
        back = read_concept(path)
        assert back.layers == 16 and back.num_vectors == 2 and back.family == "sd1"
        assert torch.equal(back.vectors["clip"], rows) and back.vectors["clip"].dtype == rows.dtype
    # the file kohya's save_weights writes: 16 keys in its order, [N, D] each, no ticraft header
    per_layer = rows.reshape(16, 2, 768)
    save_file({k: per_layer[i].clone() for i, k in enumerate(KOHYA_LAYERS)}, str(tmp_path / "kohya.safetensors"))
    theirs = read_concept(tmp_path / "kohya.safetensors")
    assert theirs.token == "<kohya>" and torch.equal(theirs.vectors["clip"], rows)
    with pytest.raises(FormatError, match="per cross-attention layer .*'kohya-xti'"):
        write_concept(c, tmp_path / "k.bin", layout="diffusers")


def test_other_layer_counts_and_sdxl_use_ticrafts_per_layer_file(tmp_path):
    from ticraft.formats import FormatError, detect_layout, read_concept, write_concept

    c = Concept("<x>", {"clip_l": torch.randn(70, 768), "clip_g": torch.randn(70, 1280).bfloat16()},
                meta={"method": "xti", "xti_layers": 70})
    with pytest.raises(FormatError, match="16 layers of one text encoder"):
        write_concept(c, tmp_path / "x.safetensors", layout="kohya-xti")
    [path] = write_concept(c, tmp_path / "x.safetensors", layout="ticraft-xti")
    assert detect_layout(path) == "ticraft-xti"
    back = read_concept(path)
    assert back.family == "sdxl" and back.layers == 70
    assert all(torch.equal(back.vectors[k], c.vectors[k]) and back.vectors[k].dtype == c.vectors[k].dtype
               for k in c.vectors)


def test_flatten_gives_one_token_with_its_measured_loss(bb):
    from ticraft.analysis.flatten import flatten

    L = layer_count(bb.unet)
    base = bb.token_vector("toy")["clip"]
    rows = base.repeat(L, 1) + 0.3 * torch.randn(L, base.shape[1], generator=torch.Generator().manual_seed(4))
    c = _xti(bb, rows, "<fl>")
    r = flatten(bb, c, steps=30)
    assert r.concept.layers == 1 and r.concept.vectors["clip"].shape == (1, 32)
    assert r.floor <= r.loss <= r.start_loss and r.concept.meta["flatten_loss"] == r.loss
    # equal layers flatten to exactly that vector, at zero loss
    same = flatten(bb, _xti(bb, base.repeat(L, 1), "<fl>"), steps=0)
    assert torch.allclose(same.concept.vectors["clip"], base) and same.loss < 1e-10
    # a plain concept is refused in one sentence that says why (and counts its vectors right)
    from ticraft.analysis.flatten import FlattenError
    from ticraft.concept import Concept

    for n, words in ((1, "its 1 vector serves every layer already"), (3, "its 3 vectors serve every layer already")):
        plain = Concept("<pl>", {"clip": base.repeat(n, 1)}, family=bb.family)
        with pytest.raises(FlattenError, match=r"<pl> is not a per-layer \(XTI\) concept: " + words):
            flatten(bb, plain)


def test_neighbors_per_layer(bb):
    from ticraft.analysis.neighbors import find_neighbors

    L = layer_count(bb.unet)
    c = _xti(bb, bb.token_vector("toy")["clip"].repeat(L, 1), "<nb>")
    report = find_neighbors(bb, c, k=1, per_vector=True, disk_cache=False)
    assert [r.label for r in report.rows] == ["mean"] + [f"layer {i}" for i in range(L)]
    assert all(r.matches[0].token == "toy" for r in report.rows)


def test_interp_mix_and_edit_work_on_per_layer_concepts(bb):
    from PIL import Image

    from ticraft.analysis.expr import mix
    from ticraft.analysis.interpolate import interpolation_path
    from ticraft.generate.edit import edit
    from ticraft.generate.sample import generate
    from ticraft.generate.specs import SampleSpec

    L = layer_count(bb.unet)
    g = torch.Generator().manual_seed(5)
    a = _xti(bb, torch.randn(L, 32, generator=g) * 0.3, "<a>")
    b = _xti(bb, torch.randn(L, 32, generator=g) * 0.3, "<b>")
    frames = interpolation_path(a, b, steps=3, mode="slerp")
    assert all(f.concept.layers == L for f in frames)
    assert torch.equal(frames[0].concept.vectors["clip"], a.vectors["clip"])
    m = mix("0.5*<a> + 0.5*<b>", concepts={"<a>": a, "<b>": b}.get, token="<m>")
    assert m.layers == L
    spec = [SampleSpec("<interp-1> next to <m>", seed=0, steps=2)]
    assert generate(bb, spec, concepts=[frames[1].concept, m])[0].size == (16, 16)
    src = Image.new("RGB", (16, 16), (120, 30, 200))
    assert len(edit(bb, src, "a photo of <a>", strength=0.5, steps=4, concepts=[a])) >= 1
    for t in ("<interp-1>", "<m>", "<a>"):
        bb.unload_concept(t)


def _tiny_sd2_backbone(tmp_path):
    """SD-2.x's differences in a tiny random model: v-prediction, linear projections in the transformers."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from tiny_models import _text_encoder, _vae, tiny_tokenizer

    from ticraft.models.backbone import components_from_pipeline

    tok = tiny_tokenizer(tmp_path / "tok")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=(2, 4), norm_num_groups=4, use_linear_projection=True,
    )
    sched = DDIMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=_vae(0), text_encoder=_text_encoder(len(tok), 32), tokenizer=tok, unet=unet,
                                   scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    return components_from_pipeline(pipe, name="tiny-sd2")


@pytest.mark.parametrize("method", ["xti", "directional"])
def test_sd2_shaped_model_trains_and_samples(method, images, tmp_path):
    from ticraft.generate.sample import generate
    from ticraft.generate.specs import SampleSpec

    bb = _tiny_sd2_backbone(tmp_path)
    before = _frozen(bb)
    c = ticraft.train(images, "<thing>", "toy", model=bb, **dict(FAST, method=method))
    _assert_frozen(bb, before)
    assert c.meta["prediction_type"] == "v_prediction" and c.meta["method"] == method
    assert c.layers == (layer_count(bb.unet) if method == "xti" else 1)
    assert generate(bb, [SampleSpec("a photo of <thing>", seed=0, steps=2)], concepts=[c])[0].size == (16, 16)


def test_train_summary_says_what_was_learned(bb):
    """`ticraft train`'s last line names per-layer and direction-only vectors, not only a count."""
    import torch

    from ticraft.cli.train_options import learned_text
    from ticraft.concept import Concept

    L = layer_count(bb.unet)
    row = bb.token_vector("toy")["clip"]
    assert learned_text(_xti(bb, row.repeat(L, 1), "<s>")) == f"1 vector per layer × {L} layers (xti)"
    two = Concept("<s2>", {"clip": row.repeat(2 * L, 1)}, family=bb.family, meta={"method": "xti", "xti_layers": L})
    assert learned_text(two) == f"2 vectors per layer × {L} layers (xti)"
    direc = Concept("<d>", {"clip": torch.nn.functional.normalize(row.repeat(3, 1), dim=-1)}, family=bb.family,
                    meta={"method": "directional", "norm": {"clip": 0.4123}})
    assert learned_text(direc) == "3 direction-only vectors (norm 0.412)"
    assert learned_text(Concept("<p>", {"clip": row}, family=bb.family)) == "1 vector"
