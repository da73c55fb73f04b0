"""Interpolation: exact endpoints, explicit count matching, saved frames, a rendered strip with one seed."""

from __future__ import annotations

import pytest
import torch

from ticraft.analysis.interpolate import frame_ts, interpolation_path, match_pair, render_interpolation, save_frames
from ticraft.concept import Concept, ConceptError, match_count


def _c(token: str, n: int = 1, d: int = 32, seed: int = 0, family: str = "toy") -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(n, d, generator=g)}, family=family)


@pytest.mark.parametrize("mode", ["slerp", "lerp"])
@pytest.mark.parametrize("steps", [2, 5, 8])
def test_endpoints_equal_the_inputs_exactly(mode, steps):
    a, b = _c("<a>", 2, seed=1), _c("<b>", 2, seed=2)
    frames = interpolation_path(a, b, steps=steps, mode=mode)
    assert [f.t for f in frames] == frame_ts(steps) and frames[0].t == 0.0 and frames[-1].t == 1.0
    assert torch.equal(frames[0].concept.vectors["clip"], a.vectors["clip"])
    assert torch.equal(frames[-1].concept.vectors["clip"], b.vectors["clip"])
    assert [f.concept.token for f in frames] == [f"<interp-{i}>" for i in range(steps)]
    assert frames[1].concept.meta["from"] == "<a>" and frames[1].concept.meta["to"] == "<b>"


def test_slerp_and_lerp_shapes():
    a = Concept("<a>", {"clip": torch.tensor([[1.0, 0.0]])}, family="toy")
    b = Concept("<b>", {"clip": torch.tensor([[0.0, 3.0]])}, family="toy")
    mid_s = interpolation_path(a, b, steps=3, mode="slerp")[1].concept
    mid_l = interpolation_path(a, b, steps=3, mode="lerp")[1].concept
    assert mid_s.norms()["clip"][0] == pytest.approx(2.0, abs=1e-5)  # norms interpolate linearly
    assert torch.allclose(mid_l.vectors["clip"], torch.tensor([[0.5, 1.5]]))
    v = mid_s.vectors["clip"][0]
    assert float(v[0]) == pytest.approx(float(v[1]), rel=1e-5)  # halfway in angle: 45° between x and y


def test_different_counts_need_an_explicit_match():
    a, b = _c("<a>", 1, seed=1), _c("<b>", 3, seed=2)
    with pytest.raises(ConceptError, match=r'match="pad" .* match="merge"'):
        interpolation_path(_c("<a2>", 2, seed=1), b, steps=4)  # a single vector broadcasts; two against three do not
    for match in ("pad", "merge"):
        frames = interpolation_path(a, b, steps=4, match=match)
        assert all(f.concept.num_vectors == 3 for f in frames)
        assert torch.equal(frames[0].concept.vectors["clip"], match_count(a, 3, match).vectors["clip"])
        assert torch.equal(frames[-1].concept.vectors["clip"], b.vectors["clip"])
    a2, b2 = match_pair(a, b, "merge", count=1)
    assert a2.num_vectors == b2.num_vectors == 1


def test_bad_inputs_are_clear():
    a, b = _c("<a>"), _c("<b>", d=16)
    with pytest.raises(ConceptError, match="widths"):
        interpolation_path(a, b)
    with pytest.raises(ConceptError, match="at least 2"):
        interpolation_path(a, _c("<c>"), steps=1)
    with pytest.raises(ConceptError, match="mode"):
        interpolation_path(a, _c("<c>"), mode="cubic")  # type: ignore[arg-type]


def test_saved_frames_load_back(tmp_path):
    from ticraft.library import read_file

    frames = interpolation_path(_c("<a>", 2, seed=1), _c("<b>", 2, seed=2), steps=3)
    paths = save_frames(frames, tmp_path / "frames")
    assert [p.name for p in paths] == ["interp_00_t0.000.safetensors", "interp_01_t0.500.safetensors",
                                       "interp_02_t1.000.safetensors"]
    for f, p in zip(frames, paths):
        (back,) = read_file(p, token="<x>", family="toy")
        assert torch.equal(back.vectors["clip"], f.concept.vectors["clip"])


def test_rendered_strip_uses_one_seed(bb, tmp_path):
    from ticraft.imaging import read_png_text
    from ticraft.generate.sample import SampleSpec, generate

    a = Concept("<a>", {"clip": bb.token_vector("cat")["clip"]}, family=bb.family)
    b = Concept("<b>", {"clip": bb.token_vector("dog")["clip"]}, family=bb.family)
    res = render_interpolation(bb, a, b, steps=3, prompt="a photo of {} on the beach", seed=11, sample_steps=2,
                               batch_size=1, out=tmp_path / "strip.png")
    assert res.path is not None and res.path.is_file() and len(res.images) == 3
    assert res.strip.width > 3 * res.images[0].width
    assert '"seed": 11' in read_png_text(res.path)["ticraft-analysis"]
    # the first frame is exactly what the start concept renders with that seed (only the vectors move)
    (ref,) = generate(bb, [SampleSpec("a photo of <a> on the beach", seed=11, steps=2)], concepts=[a],
                      batch_size=1)
    assert list(ref.getdata()) == list(res.images[0].getdata())
    with pytest.raises(ConceptError, match="needs a"):
        render_interpolation(bb, a, b, prompt="no placeholder")


def test_rendered_strip_reports_progress_and_stops_when_the_callback_raises(bb):
    a = Concept("<a>", {"clip": bb.token_vector("cat")["clip"]}, family=bb.family)
    b = Concept("<b>", {"clip": bb.token_vector("dog")["clip"]}, family=bb.family)
    seen: list[tuple[int, int]] = []
    render_interpolation(bb, a, b, steps=3, sample_steps=2, batch_size=1, callback=lambda s, t: seen.append((s, t)))
    assert seen and seen[-1][0] == seen[-1][1] and [s for s, _ in seen] == sorted(s for s, _ in seen)

    class Cancelled(Exception):
        pass

    def cancel(step: int, total: int) -> None:
        if step >= 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        render_interpolation(bb, a, b, steps=3, sample_steps=2, batch_size=1, callback=cancel)
