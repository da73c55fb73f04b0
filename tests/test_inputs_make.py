"""Inputs of the commands that make things (`mix`, `edit`, `sample`) are refused, in one sentence, before anything is
written or loaded, instead of being ignored or silently fixed."""

from __future__ import annotations

import pytest
import torch
from cli_helpers import cli_error, run_cli
from PIL import Image

from ticraft.concept import Concept
from ticraft.library import Library


@pytest.fixture()
def lib(tmp_path, bb):
    library = Library(tmp_path / "lib")
    rows = torch.cat([bb.token_vector(w)["clip"] for w in ("cat", "dog")])
    library.add(Concept("<zorb>", {"clip": rows * 1.5}, family=bb.family))
    return library


# ---------------------------------------------------------------------------------------------------------- mix
def test_mix_refuses_an_empty_as_token(lib):
    text = cli_error(run_cli("mix", "<zorb> * 2", "--as", "", "-L", lib.root))
    assert "non-empty" in text
    assert not lib.has("<mix>") and [e.token for e in lib.entries()] == ["<zorb>"]


@pytest.mark.parametrize(("extra", "named"), [
    (["--model", "/nonexistent"], "--model only matters"),
    (["--device", "cpu"], "--device only matters"),
    (["--dtype", "fp32"], "--dtype only matters"),
    (["--words", "vectors"], "--words only matters"),
    (["--model", "/nonexistent", "--device", "cpu", "--words", "mean"], "--model, --device and --words only matter"),
])
def test_mix_without_words_refuses_model_options(lib, extra, named):
    text = cli_error(run_cli("mix", "<zorb> * 2", "--as", "<z2>", "-L", lib.root, *extra))
    assert f"{named} when the expression has plain words" in text
    assert not lib.has("<z2>")


def test_mix_records_words_only_when_words_were_used(lib, tiny_sd_dir):
    r = run_cli("mix", "<zorb> * 2", "--as", "<z2>", "-L", lib.root)
    assert r.exit_code == 0, r.output
    assert "words" not in lib.get("<z2>").meta and "model" not in lib.get("<z2>").meta
    r = run_cli("mix", "<zorb> + 0.1*cat", "--as", "<z3>", "-L", lib.root, "--model", tiny_sd_dir)
    assert r.exit_code == 0, r.output
    assert lib.get("<z3>").meta["words"] == "mean"


@pytest.mark.parametrize(("extra", "named"), [
    (["--tag", "x"], "--tag only matters"),
    (["--overwrite"], "--overwrite only matters"),
    (["-t", "x", "--overwrite"], "--tag and --overwrite only matter"),
])
def test_mix_dry_run_refuses_saving_options(lib, extra, named):
    text = cli_error(run_cli("mix", "<zorb> * 2", "--dry-run", "-L", lib.root, *extra))
    assert f"{named} when saving" in text and "dry run" not in text


# --------------------------------------------------------------------------------------------------------- edit
@pytest.mark.parametrize(("size", "said"), [("0", "width must be a positive multiple of 8 px, got 0"),
                                            ("12", "width must be a positive multiple of 8 px, got 12"),
                                            ("16x7", "height must be a positive multiple of 8 px, got 7"),
                                            ("7x7", "width must be a positive multiple of 8 px, got 7")])
def test_edit_refuses_a_size_sample_refuses(tiny_sd_dir, lib, tmp_path, size, said):
    src = tmp_path / "src.png"
    Image.new("RGB", (16, 16), "gray").save(src)
    out = tmp_path / "out"
    text = cli_error(run_cli("edit", src, "a photo of <zorb>", "--size", size, "--steps", 1, "-m", tiny_sd_dir,
                          "-L", lib.root, "-o", out))
    assert said in text
    assert not out.exists()


def test_sample_refuses_size_zero_in_the_same_words(tiny_sd_dir, lib, tmp_path):
    out = tmp_path / "out"
    text = cli_error(run_cli("sample", "a photo of <zorb>", "--size", "0", "--steps", 1, "-m", tiny_sd_dir,
                          "-L", lib.root, "-o", out))
    assert "width must be a positive multiple of 8 px, got 0" in text
    assert not out.exists()


# ------------------------------------------------------------------------------------------------------- sample
def test_sample_grid_needs_two_pictures(tiny_sd_dir, lib, tmp_path):
    out = tmp_path / "out"
    # /nonexistent: the refusal comes before any model loads
    text = cli_error(run_cli("sample", "a photo of <zorb>", "--grid", "-o", out, "-m", "/nonexistent", "-L", lib.root))
    assert "--grid needs at least 2 pictures: add -n 2 or more (got -n 1)" in text
    assert not out.exists()


def test_sample_from_refuses_batch_size_for_an_exact_recreation(tiny_sd_dir, lib, tmp_path):
    first = tmp_path / "first"
    r = run_cli("sample", "a photo of <zorb>", "--steps", 1, "--size", 16, "-m", tiny_sd_dir, "-L", lib.root, "-o", first)
    assert r.exit_code == 0, r.output
    made = next(first.glob("*.png"))
    again = tmp_path / "again"
    text = cli_error(run_cli("sample", "--from", made, "-b", 1, "-m", "/nonexistent", "-L", lib.root, "-o", again))
    assert "--batch-size does not apply to an exact re-creation with --from" in text
    assert not again.exists()
    # new images from the recorded settings do use it
    r = run_cli("sample", "--from", made, "-n", 2, "-b", 1, "-m", tiny_sd_dir, "-L", lib.root, "-o", again, "--grid")
    assert r.exit_code == 0, r.output
    assert len(list(again.glob("0*.png"))) == 2 and list(again.glob("grid-*.png"))
