"""SD3/Flux embedding files: ComfyUI, diffusers' script and OneTrainer layouts; exact round trips; clear refusals."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from ticraft.concept import Concept
from ticraft.formats import FormatError, detect_layout, read_concept, write_concept

REAL = {"sd3": {"clip_l": 768, "clip_g": 1280, "t5": 4096}, "flux": {"clip_l": 768, "t5": 4096}}


def _concept(family: str, dtype=torch.float32, n: int = 2, dims=None) -> Concept:
    g = torch.Generator().manual_seed(1)
    vecs = {k: torch.randn(n, d, generator=g).to(dtype) for k, d in (dims or REAL[family]).items()}
    return Concept("<thing>", vecs, family=family, meta={"steps": 7})


def _equal(a: Concept, b: Concept) -> bool:
    return a.vectors.keys() == b.vectors.keys() and all(
        a.vectors[k].dtype == b.vectors[k].dtype and torch.equal(a.vectors[k], b.vectors[k]) for k in a.vectors)


@pytest.mark.parametrize("family", ["sd3", "flux"])
@pytest.mark.parametrize("layout, t5_key", [("comfyui", "t5xxl"), ("diffusers-t5", "t5"), ("diffusers", "t5")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_round_trip_is_exact(family, layout, t5_key, dtype, tmp_path):
    c = _concept(family, dtype)
    [path] = write_concept(c, tmp_path / "x.safetensors", layout)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        keys = set(f.keys())
    assert keys == {"t5" if k == "t5" and t5_key == "t5" else ("t5xxl" if k == "t5" else k) for k in c.vectors}
    assert detect_layout(path) == ("diffusers-t5" if layout == "diffusers" else layout)
    back = read_concept(path)
    assert _equal(back, c) and back.token == c.token and back.family == family and back.meta == c.meta


@pytest.mark.parametrize("family", ["sd3", "flux"])
def test_foreign_files_are_read_by_keys_and_widths(family, tmp_path):
    """Files without ticraft's metadata (as ComfyUI users and diffusers' script have them)."""
    c = _concept(family)
    comfy = {("t5xxl" if k == "t5" else k): v for k, v in c.vectors.items()}
    save_file(comfy, str(tmp_path / "comfy.safetensors"))
    save_file(dict(c.vectors), str(tmp_path / "script_emb.safetensors"))  # diffusers' advanced script / OneTrainer
    for name, layout in (("comfy", "comfyui"), ("script_emb", "diffusers-t5")):
        back = read_concept(tmp_path / f"{name}.safetensors")
        assert back.family == family and back.token == f"<{name}>" and back.meta == {"imported_from": layout}
        assert all(torch.equal(back.vectors[k], c.vectors[k]) for k in c.vectors)


def test_convert_between_layouts_keeps_tensors(tmp_path):
    c = _concept("sd3")
    [a] = write_concept(c, tmp_path / "a.safetensors", "comfyui")
    [b] = write_concept(read_concept(a), tmp_path / "b.safetensors", "diffusers-t5")
    [d] = write_concept(read_concept(b), tmp_path / "d.safetensors", "comfyui")
    assert _equal(read_concept(d), c) and detect_layout(b) == "diffusers-t5"


def test_cli_convert_defaults_to_comfyui_for_t5_concepts(tmp_path):
    from typer.testing import CliRunner

    from ticraft.cli.main import app

    src = write_concept(_concept("flux"), tmp_path / "in.safetensors", "diffusers-t5")[0]
    out = tmp_path / "out.safetensors"
    result = CliRunner().invoke(app, ["library", "convert", str(src), str(out)])
    assert result.exit_code == 0, result.output
    assert detect_layout(out) == "comfyui" and _equal(read_concept(out), read_concept(src))
    again = tmp_path / "again.safetensors"
    result = CliRunner().invoke(app, ["library", "convert", str(out), str(again), "--format", "diffusers-t5"])
    assert result.exit_code == 0, result.output
    assert detect_layout(again) == "diffusers-t5"


def test_missing_key_is_refused_in_one_sentence(tmp_path):
    save_file({"clip_l": torch.zeros(1, 768), "t5xxl": torch.zeros(1, 4096)}, str(tmp_path / "f.safetensors"))
    with pytest.raises(FormatError, match="lacks key 'clip_g', which a sd3 concept needs") as err:
        read_concept(tmp_path / "f.safetensors", family="sd3")
    assert "\n" not in str(err.value)
    assert read_concept(tmp_path / "f.safetensors").family == "flux"  # the same file is a Flux one


@pytest.mark.parametrize("tensors, message", [
    ({"t5xxl": torch.zeros(1, 4096)}, "ambiguous"),
    ({"clip_g": torch.zeros(1, 1280), "t5": torch.zeros(1, 4096)}, "lacks key 'clip_l', which a sd3 concept"),
    ({"clip_l": torch.zeros(1, 768)}, "ambiguous"),  # diffusers' Flux script without T5: not a token "clip_l"
    ({"clip_l": torch.zeros(1, 32), "t5": torch.zeros(1, 96)}, "give the family"),
    ({"clip_l": torch.zeros(1, 768), "t5": torch.zeros(1, 96), "t5_out": torch.zeros(1, 96)}, "t5_out"),
])
def test_ambiguous_odd_and_output_space_files_are_refused(tensors, message, tmp_path):
    save_file(tensors, str(tmp_path / "f.safetensors"))
    with pytest.raises(FormatError, match=message):
        read_concept(tmp_path / "f.safetensors")


def test_tiny_widths_read_with_a_family_and_from_metadata(tmp_path):
    c = _concept("flux", dims={"clip_l": 32, "t5": 96})
    [p] = write_concept(c, tmp_path / "t.safetensors", "comfyui")
    assert _equal(read_concept(p), c)  # metadata carries the family
    save_file({"clip_l": c.vectors["clip_l"], "t5xxl": c.vectors["t5"]}, str(tmp_path / "bare.safetensors"))
    assert read_concept(tmp_path / "bare.safetensors", family="flux").family == "flux"


def test_wrong_layout_for_a_t5_concept_is_refused(tmp_path):
    with pytest.raises(FormatError, match="comfyui"):
        write_concept(_concept("sd3"), tmp_path / "x.pt", "a1111")


def test_library_keeps_sd3_and_flux_concepts(tmp_path):
    from ticraft.library import Library

    lib = Library.resolve(tmp_path / "lib")
    for fam in ("sd3", "flux"):
        c = _concept(fam).replace(token=f"<{fam}-thing>")
        lib.add(c)
        assert _equal(lib.get(c.token), c)


def test_onetrainer_ckpt_files_are_read(tmp_path):
    """OneTrainer's CKPT export: torch.save({"clip_l": T, "t5": T}) (Flux) — read without unpickling code."""
    c = _concept("flux")
    torch.save({k: v.clone() for k, v in c.vectors.items()}, tmp_path / "ot.pt")
    back = read_concept(tmp_path / "ot.pt")
    assert detect_layout(tmp_path / "ot.pt") == "diffusers-t5" and back.family == "flux"
    assert all(torch.equal(back.vectors[k], c.vectors[k]) for k in c.vectors)
