"""`ticraft interp --save-vectors`: every frame file holds the whole interpolated concept (every encoder, per-layer
rows with their layer count) in ticraft's layout for its kind, and ticraft's loader gives back the frame exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ticraft.analysis.interpolate import Frame, frame_layout, interpolation_path, save_frames
from ticraft.cli.main import app
from ticraft.concept import Concept
from ticraft.errors import TicraftError
from ticraft.formats import detect_layout, read_concept

SD3_WIDTHS = {"clip_l": 768, "clip_g": 1280, "t5": 4096}


def _concept(token: str, widths: dict[str, int], *, n: int = 2, seed: int = 0, family: str | None = None,
             dtype: torch.dtype = torch.float32, **meta: object) -> Concept:
    g = torch.Generator().manual_seed(seed)
    vectors = {k: torch.randn(n, d, generator=g).to(dtype) for k, d in widths.items()}
    return Concept(token, vectors, family=family, meta=dict(meta))


def _pair(widths: dict[str, int], **kw: object) -> tuple[Concept, Concept]:
    return _concept("<a>", widths, seed=1, **kw), _concept("<b>", widths, seed=2, **kw)  # type: ignore[arg-type]


def _xti_pair(widths: dict[str, int], layers: int) -> tuple[Concept, Concept]:
    meta = {"method": "xti", "xti_layers": layers}
    return (_concept("<a>", widths, n=2 * layers, seed=1, **meta),  # type: ignore[arg-type]
            _concept("<b>", widths, n=2 * layers, seed=2, **meta))  # type: ignore[arg-type]


def assert_same(back: Concept, frame: Frame) -> None:
    """The loaded concept is the in-memory frame: token, family, meta, encoder keys, shapes, dtypes, values."""
    c = frame.concept
    assert (back.token, back.family, back.meta) == (c.token, c.family, c.meta)
    assert list(back.vectors) == list(c.vectors)
    assert back.layers == c.layers and back.num_vectors == c.num_vectors
    for key, v in c.vectors.items():
        assert back.vectors[key].shape == v.shape and back.vectors[key].dtype == v.dtype, key
        assert torch.equal(back.vectors[key], v), key


KINDS = {
    "sd1": (_pair({"clip": 768}), "kohya", {"clip"}),
    "sdxl": (_pair({"clip_l": 768, "clip_g": 1280}), "kohya-sdxl", {"clip_l", "clip_g"}),
    "sdxl-fp16": (_pair({"clip_l": 768, "clip_g": 1280}, dtype=torch.float16), "kohya-sdxl", {"clip_l", "clip_g"}),
    "sd3": (_pair(SD3_WIDTHS), "comfyui", {"clip_l", "clip_g", "t5"}),
    "flux": (_pair({"clip_l": 768, "t5": 4096}), "comfyui", {"clip_l", "t5"}),
    "xti-sd1": (_xti_pair({"clip": 768}, 16), "kohya-xti", {"clip"}),
    "xti-sdxl": (_xti_pair({"clip_l": 768, "clip_g": 1280}, 3), "ticraft-xti", {"clip_l", "clip_g"}),
    "directional": (_pair({"clip": 768}, method="directional", norm={"clip": 0.4}), "kohya", {"clip"}),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_frame_loads_back_whole(kind: str, tmp_path: Path) -> None:
    (a, b), layout, keys = KINDS[kind]
    frames = interpolation_path(a, b, steps=3)
    assert frame_layout(frames[0].concept) == layout
    paths = save_frames(frames, tmp_path / "frames")
    assert [p.name for p in paths] == ["interp_00_t0.000.safetensors", "interp_01_t0.500.safetensors",
                                       "interp_02_t1.000.safetensors"]
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [p.name for p in paths]  # no staging left
    for frame, path in zip(frames, paths, strict=True):
        assert detect_layout(path) == layout
        back = read_concept(path)
        assert set(back.vectors) == keys
        assert_same(back, frame)
    mid = read_concept(paths[1])
    assert (mid.meta["t"], mid.meta["from"], mid.meta["to"]) == (0.5, "<a>", "<b>")


def test_sd3_frame_keeps_every_encoder(tmp_path: Path) -> None:
    """The old writer kept only the first encoder of SD3 as emb_params; the file now has all three."""
    from safetensors import safe_open

    frames = interpolation_path(*_pair(SD3_WIDTHS), steps=2)
    (path, _) = save_frames(frames, tmp_path)
    with safe_open(str(path), "pt") as f:
        assert {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()} == {
            "clip_l": (2, 768), "clip_g": (2, 1280), "t5xxl": (2, 4096)}


def test_xti_frame_keeps_its_layers(tmp_path: Path) -> None:
    frames = interpolation_path(*_xti_pair({"clip": 768}, 16), steps=3, mode="lerp")
    back = read_concept(save_frames(frames, tmp_path)[1])
    assert back.layers == 16 and back.num_vectors == 2 and back.meta["method"] == "xti"
    assert_same(back, frames[1])


@pytest.mark.parametrize(("frames_of", "needle"), [
    (lambda: _pair({"clip_g": 1280}), "encoders ['clip_g']"),
    (lambda: _pair({"clip": 768, "t5": 4096}), "encoders ['clip', 't5']"),
    (lambda: _xti_pair(SD3_WIDTHS, 2), "per-layer (XTI) concept with T5"),
])
def test_a_kind_no_file_holds_is_refused_before_writing(frames_of, needle: str, tmp_path: Path) -> None:
    frames = interpolation_path(*frames_of(), steps=3)
    with pytest.raises(TicraftError, match=r"no embedding-file layout") as info:
        save_frames(frames, tmp_path / "frames")
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "frames").exists()


def test_a_file_as_folder_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    with pytest.raises(TicraftError, match="is a file; give a folder"):
        save_frames(interpolation_path(*_pair({"clip": 768}), steps=2), tmp_path / "x")


def test_a_failure_part_way_leaves_no_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ticraft.formats as formats

    real, calls = formats.write_concept, []

    def fail_on_second(concept: Concept, path: Path, layout: str = "diffusers") -> list[Path]:
        calls.append(path)
        if len(calls) == 2:
            raise formats.FormatError(f"{path}: disk full")
        return real(concept, path, layout)

    monkeypatch.setattr(formats, "write_concept", fail_on_second)
    with pytest.raises(TicraftError, match="disk full"):
        save_frames(interpolation_path(*_pair({"clip": 768}), steps=3), tmp_path / "frames")
    assert list((tmp_path / "frames").iterdir()) == []


def test_cli_names_the_layout_and_writes_loadable_frames(tiny_sd_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "vecs"
    r = CliRunner().invoke(app, ["interp", "cat", "dog", "--steps", "3", "--no-render", "--save-vectors", str(out),
                                 "--model", str(tiny_sd_dir), "--library", str(tmp_path / "lib")],
                           env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "wrote 3 frame files (kohya layout)" in r.output
    backs = [read_concept(p) for p in sorted(out.glob("*.safetensors"))]
    assert [c.token for c in backs] == ["<interp-0>", "<interp-1>", "<interp-2>"]
    assert [c.meta["t"] for c in backs] == [0.0, 0.5, 1.0]
