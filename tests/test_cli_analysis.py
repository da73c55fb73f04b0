"""The analysis CLI end to end on the tiny model: neighbors, mix, interp, map, probe bias/style, eval."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import cli_error, run_cli
from typer.testing import CliRunner

from ticraft.cli.main import app
from ticraft.concept import Concept
from ticraft.library import Library

runner = CliRunner()


@pytest.fixture()
def lib(tmp_path, bb):
    lib = Library(tmp_path / "lib")
    a = Concept("<a>", {"clip": torch.cat([bb.token_vector("cat")["clip"], bb.token_vector("dog")["clip"]])},
                family=bb.family)
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    from PIL import Image

    for i, colour in enumerate(("red", "green")):
        Image.new("RGB", (16, 16), colour).save(img_dir / f"{i}.png")
    lib.add(a, images=[img_dir / "0.png", img_dir / "1.png"], tags=["object"])
    return lib


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from tiny_clip import tiny_clip_folder

    return tiny_clip_folder(tmp_path_factory.mktemp("tiny_clip_cli"))


def test_neighbors_of_a_word_and_a_concept(tiny_sd_dir, lib, tmp_path):
    r = run_cli("neighbors", "cat", "-k", "3", "--model", tiny_sd_dir, "--library", lib.root)
    assert r.exit_code == 0, r.output
    assert "cat" in r.output and "norm" in r.output
    r = run_cli("neighbors", "<a>", "-k", "2", "--per-vector", "--metric", "l2", "--model", tiny_sd_dir,
            "--library", lib.root, "--json", tmp_path / "n.json")
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "n.json").read_text())
    assert [row["label"] for row in data["rows"]] == ["mean", "vector 0", "vector 1"]
    assert [row["matches"][0]["token"] for row in data["rows"][1:]] == ["cat", "dog"]
    r = run_cli("neighbors", "<missing>", "--model", tiny_sd_dir, "--library", lib.root)
    assert "<missing>" in cli_error(r)


def test_neighbors_per_vector_splits_columns_to_the_terminal(tiny_sd_dir, lib):
    """Many vectors (a 3-vector per-layer concept has 22 columns) go into several tables that fit 80 columns."""
    wide = Concept("<wide>", {"clip": torch.randn(7, lib.get("<a>").vectors["clip"].shape[1])}, family="toy")
    lib.add(wide)
    r = runner.invoke(app, ["neighbors", "<wide>", "-k", "2", "--per-vector", "--concepts", "0", "--model",
                            str(tiny_sd_dir), "--library", str(lib.root)], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "(1/3)" in r.output and "(3/3)" in r.output and "vector 6" in r.output, r.output
    assert max(len(line) for line in r.output.splitlines() if line[:1] in "┏┃┡│└") <= 80  # every table row
    assert "…" not in r.output  # no column squeezed into an ellipsis


def test_mix_saves_the_exact_python_result(tiny_sd_dir, lib, bb):
    from ticraft.analysis.neighbors import word_concept

    r = run_cli("mix", "0.7*<a> + 0.3*concat(painting, dog) - 0.2*concat(vec(<a>, 1), vec(<a>, 0))", "--as", "<b>", "--tag", "mixed",
            "--model", tiny_sd_dir, "--library", lib.root)
    assert r.exit_code == 0, r.output
    a = lib.get("<a>")
    from ticraft.concept import concat

    want = 0.7 * a + 0.3 * concat(word_concept(bb, "painting"), word_concept(bb, "dog")) - 0.2 * concat(a[1], a[0])
    got = lib.get("<b>")
    assert torch.equal(got.vectors["clip"], want.vectors["clip"])
    assert got.meta["expression"].startswith("0.7*<a>") and "mixed" in lib.entry("<b>").tags
    # no words: no model needed, so a --model it would ignore is refused
    r = run_cli("mix", "mean(<a>) * 2", "--dry-run", "--library", lib.root)
    assert r.exit_code == 0, r.output
    assert "dry run" in r.output
    r = run_cli("mix", "mean(<a>) * 2", "--dry-run", "--library", lib.root, "--model", "/nonexistent")
    assert r.exit_code != 0 and "--model only matters when the expression has plain words" in r.output


@pytest.mark.parametrize(("expr", "needle"), [("__import__('os').system('x')", "__"), ("<a>.vectors", "attribute"),
                                              ("0.7*<a> + * 2", "column 11")])
def test_mix_rejects_code_with_a_caret(lib, expr, needle):
    r = run_cli("mix", expr, "--as", "<c>", "--library", lib.root)
    text = cli_error(r)
    assert needle in text and "^" in text
    assert not lib.has("<c>")


def test_interp_writes_strip_and_vectors(tiny_sd_dir, lib, tmp_path):
    r = run_cli("interp", "<a>", "toy", "--match", "pad", "--steps", "3", "--sample-steps", "2", "--seed", "5",
            "--out", tmp_path / "strip.png", "--save-vectors", tmp_path / "vecs", "--model", tiny_sd_dir,
            "--library", lib.root)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "strip.png").is_file() and len(list((tmp_path / "vecs").glob("*.safetensors"))) == 3
    assert "strip.png" in r.output
    # a one-vector word broadcasts against <a>'s two vectors; two against three still needs --match
    r = run_cli("interp", "<a>", "toy", "--steps", "3", "--no-render", "--model", tiny_sd_dir, "--library", lib.root)
    assert r.exit_code == 0, r.output
    lib.add(Concept("<three>", {"clip": torch.randn(3, 32)}, family=lib.get("<a>").family))
    r = run_cli("interp", "<a>", "<three>", "--steps", "3", "--no-render", "--model", tiny_sd_dir, "--library", lib.root)
    assert "--match" in cli_error(r)


def test_map_writes_png_and_coordinates(tiny_sd_dir, lib, tmp_path):
    out = tmp_path / "m" / "map.png"
    r = run_cli("map", "--method", "pca", "--vocab", "30", "--concepts", "object", "--out", out, "--model", tiny_sd_dir,
            "--library", lib.root)
    assert r.exit_code == 0, r.output
    for suffix in (".png", ".json", ".csv"):
        assert out.with_suffix(suffix).is_file() and out.with_suffix(suffix).name in r.output.replace("\n", "")
    first = out.with_suffix(".json").read_bytes()
    r = run_cli("map", "--method", "pca", "--vocab", "30", "--concepts", "object", "--out", out, "--model", tiny_sd_dir,
            "--library", lib.root, "--no-cache")
    assert r.exit_code == 0 and out.with_suffix(".json").read_bytes() == first  # deterministic for a seed
    assert any(p["label"] == "<a>" for p in json.loads(first)["points"])


def test_probe_bias_needs_clip_for_real_models_then_runs(tiny_sd_dir, lib, tiny_clip, tmp_path):
    r = run_cli("probe", "bias", "a photo of a cat", "--model", tiny_sd_dir, "--library", lib.root)
    assert "--clip" in cli_error(r)
    r = run_cli("probe", "bias", "a photo of a cat", "--compare", "a photo of <a>", "--attribute", "gender", "-n", "2",
            "--sample-steps", "1", "--clip", tiny_clip, "--out", tmp_path / "bias.png", "--json", tmp_path / "b.json",
            "--model", tiny_sd_dir, "--library", lib.root)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "bias.png").is_file() and "distance to uniform" in r.output
    data = json.loads((tmp_path / "b.json").read_text())
    assert len(data["reports"]) == 2 and sum(data["reports"][0]["counts"].values()) == 2


def test_probe_style_and_eval(tiny_sd_dir, lib, tiny_clip, tmp_path):
    r = run_cli("probe", "style", "<a>", "--content", "a red cat", "-n", "1", "--sample-steps", "1", "--clip", tiny_clip,
            "--out", tmp_path / "style.png", "--model", tiny_sd_dir, "--library", lib.root)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "style.png").is_file() and "content preservation" in r.output
    r = run_cli("eval", "<a>", "-n", "1", "--sample-steps", "1", "--clip", tiny_clip, "--prompt", "a photo of {} on the beach",
            "--out", tmp_path / "eval.png", "--json", tmp_path / "e.json", "--model", tiny_sd_dir, "--library", lib.root)
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "e.json").read_text())
    assert data["edits"][0]["target"] == "a photo of on the beach" and (tmp_path / "eval.png").is_file()
    r = run_cli("eval", "<a>", "--model", tiny_sd_dir, "--library", lib.root)
    assert "--clip" in cli_error(r)
