"""Direction-only inversion: rows stay on the sphere (default: the vocabulary's median norm, or --norm), the
direction learns, the model stays frozen, resume is exact, SD / SDXL (both encoders) / toy, and mix / interp
keep the norm."""

from __future__ import annotations

import pytest
import torch
from test_xti import FAST, _assert_frozen, _frozen  # noqa: F401  (shared helpers)
from train_images import write_images

import ticraft
from ticraft.concept import Concept, keep_norm, slerp
from ticraft.models.load import load_backbone
from ticraft.training.directional import typical_norm


@pytest.fixture
def images(tmp_path):
    return write_images(tmp_path / "images", n=3)


def _norms(c: Concept, key: str) -> torch.Tensor:
    return c.vectors[key].norm(dim=1)


def test_directional_keeps_the_vocabulary_norm_and_resumes_exactly(tiny_sd_dir, images, tmp_path):
    bb = load_backbone(str(tiny_sd_dir))
    before = _frozen(bb)
    opts = dict(FAST, steps=6, save_every=3, method="directional", num_vectors=2)
    full = ticraft.train(images, "<thing>", "toy cat", model=bb, output_dir=tmp_path / "a", **opts)
    _assert_frozen(bb, before)
    target = typical_norm(bb.encoders[0].table)
    assert torch.allclose(_norms(full, "clip"), torch.full((2,), target), rtol=1e-5)
    assert full.meta["method"] == "directional" and full.meta["norm"] == {"clip": pytest.approx(target)}
    init = bb.token_vector("toy cat")["clip"]
    cos = torch.nn.functional.cosine_similarity(full.vectors["clip"], init, dim=1)
    assert (cos < 1 - 1e-6).all()  # the direction moved
    resumed = ticraft.train(images, "<thing>", "toy cat", model=str(tiny_sd_dir), output_dir=tmp_path / "b",
                            resume=tmp_path / "a" / "checkpoint-0000003.pt", **opts)
    assert torch.equal(full.vectors["clip"], resumed.vectors["clip"])
    assert full.meta["loss_curve"] == resumed.meta["loss_curve"]


def test_explicit_norm_on_sdxl_both_encoders(tiny_sdxl_dir, images):
    bb = load_backbone(str(tiny_sdxl_dir))
    before = _frozen(bb)
    c = ticraft.train(images, "<thing>", "toy", model=bb, **dict(FAST, method="directional", norm=0.5))
    _assert_frozen(bb, before)
    for key in ("clip_l", "clip_g"):
        assert torch.allclose(_norms(c, key), torch.tensor([0.5]), rtol=1e-5)


def test_directional_on_the_toy_model(images):
    bb = load_backbone("toy")
    before = _frozen(bb)
    c = ticraft.train(images, "<thing>", "shape", model=bb, **dict(FAST, steps=2, method="directional"))
    _assert_frozen(bb, before)
    assert torch.allclose(_norms(c, "clip"), torch.tensor([typical_norm(bb.encoders[0].table)]), rtol=1e-5)


def test_norm_needs_the_directional_method():
    from ticraft.training.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="norm applies to method directional"):
        TrainConfig.from_options(norm=2.0)
    with pytest.raises(ConfigError, match="must be > 0"):
        TrainConfig.from_options(method="directional", norm=-1.0)


def test_slerp_mix_and_interp_keep_the_norm():
    from ticraft.analysis.expr import mix
    from ticraft.analysis.interpolate import interpolation_path as frames

    meta = {"method": "directional", "norm": {"clip": 2.0}}
    g = torch.Generator().manual_seed(0)
    a = keep_norm(Concept("<a>", {"clip": torch.randn(1, 16, generator=g)}, family="toy", meta=meta))
    b = keep_norm(Concept("<b>", {"clip": torch.randn(1, 16, generator=g)}, family="toy", meta=meta))
    assert torch.allclose(_norms(slerp(a, b, 0.3), "clip"), torch.tensor([2.0]))
    m = mix("0.7*<a> + 0.3*<b>", concepts={"<a>": a, "<b>": b}.get, token="<m>")
    assert torch.allclose(_norms(m, "clip"), torch.tensor([2.0])) and m.meta["method"] == "directional"
    plain_mix = mix("0.7*<a> + 0.3*<b>", concepts={"<a>": a.replace(meta={}), "<b>": b.replace(meta={})}.get)
    assert _norms(plain_mix, "clip")[0] < 1.99  # an ordinary mix shrinks: the directional one did not
    for mode in ("slerp", "lerp"):
        for f in frames(a, b, steps=4, mode=mode):
            assert torch.allclose(_norms(f.concept, "clip"), torch.tensor([2.0]), atol=1e-5)
