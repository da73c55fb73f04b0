"""Bad input to `neighbors`, `interp`, `map` and `probe bias` is one clear error, refused before anything is written:
a missing embedding file is not looked up as a word, a several-concept file is not cut to its first concept, an empty
--concepts or --labels is not read as "everything" / "the defaults", and interp's frames record only the matching
that was applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import cli_error, run_cli

from ticraft.concept import Concept
from ticraft.formats import read_concept
from ticraft.library import Library


@pytest.fixture()
def lib(tmp_path: Path, bb: Any) -> Library:
    """Two 2-vector concepts and a 3-vector one of the tiny model."""
    lib = Library(tmp_path / "lib")
    width = bb.token_vector("cat")["clip"].shape[1]
    g = torch.Generator().manual_seed(0)
    for token, n in (("<a>", 2), ("<b>", 2), ("<three>", 3)):
        lib.add(Concept(token, {"clip": torch.randn(n, width, generator=g)}, family=bb.family))
    return lib


@pytest.mark.parametrize("name", ["x/nope.safetensors", "nope.pt", "x/nope"])
def test_neighbors_of_a_missing_file_is_refused(name: str, tiny_sd_dir: Path, lib: Library, tmp_path: Path) -> None:
    missing = tmp_path / name if "/" in name else name
    r = run_cli("neighbors", missing, "--model", tiny_sd_dir, "--library", lib.root)
    text = cli_error(r)
    assert f"no such embedding file: {missing}" in text
    assert "norm" not in r.output  # no neighbour table of the path's tokens


def test_interp_with_a_missing_file_writes_nothing(tiny_sd_dir: Path, lib: Library, tmp_path: Path) -> None:
    missing, vecs = tmp_path / "x" / "nope.safetensors", tmp_path / "vecs"
    r = run_cli("interp", missing, "<a>", "--steps", "3", "--no-render", "--save-vectors", vecs,
            "--model", tiny_sd_dir, "--library", lib.root)
    assert f"no such embedding file: {missing}" in cli_error(r)
    assert not vecs.exists()


def test_a_file_of_several_concepts_is_refused_naming_them(tiny_sd_dir: Path, lib: Library, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    width = lib.get("<a>").vectors["clip"].shape[1]
    path = tmp_path / "many.safetensors"
    save_file({"<x>": torch.ones(1, width), "<y>": torch.zeros(1, width)}, str(path))
    r = run_cli("neighbors", path, "--model", tiny_sd_dir, "--library", lib.root)
    text = cli_error(r)
    assert "holds 2 concepts (<x>, <y>)" in text and "ticraft library import" in text
    assert "norm" not in r.output


def test_a_file_of_one_concept_is_still_read(tiny_sd_dir: Path, lib: Library, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    width = lib.get("<a>").vectors["clip"].shape[1]
    path = tmp_path / "one.safetensors"
    save_file({"<x>": torch.ones(1, width)}, str(path))
    r = run_cli("neighbors", path, "-k", "2", "--model", tiny_sd_dir, "--library", lib.root)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("spec", ["", "  ", " , "])
def test_map_refuses_empty_concepts(spec: str, tiny_sd_dir: Path, lib: Library, tmp_path: Path) -> None:
    out = tmp_path / "m" / "map.png"
    r = run_cli("map", "--concepts", spec, "--method", "pca", "--vocab", "30", "--out", out, "--model", tiny_sd_dir,
            "--library", lib.root)
    assert "--concepts" in cli_error(r) and "names nothing" in cli_error(r)
    assert not out.parent.exists()


def _frames(tiny_sd_dir: Path, lib: Library, folder: Path, a: str, b: str) -> list[Concept]:
    r = run_cli("interp", a, b, "--match", "merge", "--steps", "3", "--no-render", "--save-vectors", folder,
            "--model", tiny_sd_dir, "--library", lib.root)
    assert r.exit_code == 0, r.output
    return [read_concept(p) for p in sorted(folder.glob("*.safetensors"))]


def test_interp_records_match_only_when_applied(tiny_sd_dir: Path, lib: Library, tmp_path: Path) -> None:
    same = _frames(tiny_sd_dir, lib, tmp_path / "same", "<a>", "<b>")  # 2 and 2: nothing to merge
    assert len(same) == 3 and all("match" not in c.meta for c in same)
    merged = _frames(tiny_sd_dir, lib, tmp_path / "merged", "<a>", "<three>")  # 2 and 3: <a> resampled
    assert [c.meta.get("match") for c in merged] == ["merge"] * 3


def test_interp_prompt_without_braces_writes_nothing(tiny_sd_dir: Path, lib: Library, tmp_path: Path) -> None:
    vecs, out = tmp_path / "vecs", tmp_path / "strip.png"
    r = run_cli("interp", "<a>", "<b>", "--steps", "3", "--prompt", "a photo", "--save-vectors", vecs, "--out", out,
            "--model", tiny_sd_dir, "--library", lib.root)
    assert "needs a {}" in cli_error(r)
    assert not vecs.exists() and not out.exists()


@pytest.mark.parametrize("extra", [["--out", "strip.png"], ["--seed", "3", "--sample-steps", "2"]])
def test_interp_no_render_refuses_rendering_options(extra: list[str], tiny_sd_dir: Path, lib: Library,
                                                     tmp_path: Path) -> None:
    vecs = tmp_path / "vecs"
    r = run_cli("interp", "<a>", "<b>", "--steps", "3", "--no-render", "--save-vectors", vecs, *extra,
            "--model", tiny_sd_dir, "--library", lib.root)
    text = cli_error(r)
    assert "--no-render draws no strip" in text and all(f in text for f in extra if f.startswith("--"))
    assert not vecs.exists()


@pytest.mark.parametrize("labels", [" , ", ""])
def test_probe_bias_refuses_labels_without_a_label(labels: str, tiny_sd_dir: Path, lib: Library,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "bias"
    r = run_cli("probe", "bias", "a photo of a cat", "--labels", labels, "-n", "1", "--sample-steps", "1",
            "--out", out, "--model", tiny_sd_dir, "--library", lib.root)
    assert "holds no label" in cli_error(r)
    assert not out.exists()


# ---------------------------------------------------------------------------------- refused before the model loads
@pytest.mark.parametrize(("module", "args", "needle"), [
    ("analysis_cmd", ["neighbors", "<nope>"], "<nope>"),
    ("views_cmd", ["interp", "<a>", "<nope>", "--no-render"], "<nope>"),
    ("views_cmd", ["interp", "x/missing.safetensors", "<a>", "--no-render"], "no such embedding file"),
    ("probe_cmd", ["eval", "<nope>"], "<nope>"),
    ("probe_cmd", ["probe", "bias", "a photo of <a>", "--labels", " , "], "--labels"),
])
def test_a_typo_is_refused_before_the_model_loads(module: str, args: list[str], needle: str, lib: Library,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A real model takes seconds to minutes to load: a missing <token>, file or label list is said first."""
    import importlib

    def no_load(*_: Any, **__: Any) -> None:
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(importlib.import_module(f"ticraft.cli.{module}"), "load_model", no_load)
    r = run_cli(*args, "--model", "/no/model/needed", "--library", lib.root)
    assert needle in cli_error(r)
