"""CLI: `ticraft sample` (+ --from, --attach, --grid), `compose`, `info`, `edit` on the tiny offline SD model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from PIL import Image

from ticraft.concept import Concept
from ticraft.generate.pngmeta import read_parameters


@pytest.fixture()
def lib(tmp_path):
    from ticraft.library import Library

    library = Library(tmp_path / "lib")
    g = torch.Generator().manual_seed(0)
    library.add(Concept("<cat-toy>", {"clip": torch.randn(2, 32, generator=g)}))
    library.add(Concept("<wide>", {"clip": torch.randn(1, 64, generator=g)}))
    return library


def test_sample_info_and_bit_exact_from(tiny_sd_dir, lib, tmp_path):
    out = tmp_path / "out"
    r = run_cli("sample", "a photo of <cat-toy>", "-m", tiny_sd_dir, "-L", lib.root, "-n", 3, "--seed", 7,
            "--steps", 2, "--size", "16x16", "-b", 2, "-o", out, "--grid", "--scheduler", "euler_a")
    assert r.exit_code == 0, r.output
    files = sorted(out.glob("0*.png"))
    assert [f.name for f in files] == ["00000-7.png", "00001-8.png", "00002-9.png"]
    assert list(out.glob("grid-*.png"))
    p = read_parameters(files[1])
    assert (p["prompt"], p["seed"], p["steps"]) == ("a photo of <cat-toy>", 8, 2)
    assert (p["sampler"], p["size"]) == ("euler_a", (16, 16))
    assert p["concept_hashes"] == {"<cat-toy>": lib.get("<cat-toy>").sha256()[:12]}

    info = run_cli("info", files[1])
    assert info.exit_code == 0 and "a photo of <cat-toy>" in info.output and "Sampler: Euler a" in info.output
    js = run_cli("info", files[1], "--json")
    assert json.loads(js.output)["seed"] == 8

    again = run_cli("sample", "--from", files[1], "-m", tiny_sd_dir, "-L", lib.root, "-o", out)
    assert again.exit_code == 0, again.output
    new = out / "00003-8.png"
    assert np.array_equal(np.asarray(Image.open(new)), np.asarray(Image.open(files[1])))  # bit-exact
    assert read_parameters(new)["text"] == p["text"]

    # --from with an override makes new images from the recorded settings.
    other = run_cli("sample", "--from", files[1], "-m", tiny_sd_dir, "-L", lib.root, "-o", out, "--seed", 100)
    assert other.exit_code == 0, other.output
    assert read_parameters(out / "00004-100.png")["sampler"] == "euler_a"
    # new images from --from honour --batch-size (it was not passed on: every call used 8)
    batched = run_cli("sample", "--from", files[1], "-m", tiny_sd_dir, "-L", lib.root, "-o", out, "--seed", 200,
                  "-n", 3, "-b", 1)
    assert batched.exit_code == 0, batched.output
    assert read_parameters(out / "00005-200.png").get("batch_size", 1) == 1  # A1111 writes no size for 1


def test_clear_errors(tiny_sd_dir, lib, tmp_path):
    r = run_cli("sample", "a photo of <nobody>", "-m", tiny_sd_dir, "-L", lib.root, "--steps", 1, "-o", tmp_path)
    assert r.exit_code != 0 and "<nobody>" in r.output and "Traceback" not in r.output
    r = run_cli("sample", "a photo of <wide>", "-m", tiny_sd_dir, "-L", lib.root, "--steps", 1, "-o", tmp_path)
    assert r.exit_code != 0 and "<wide>" in r.output and "expects" in r.output
    r = run_cli("sample", "x", "--scheduler", "bogus", "-m", tiny_sd_dir, "-L", lib.root, "-o", tmp_path)
    assert r.exit_code != 0 and "dpm++" in r.output
    r = run_cli("sample", "-m", tiny_sd_dir)
    assert r.exit_code != 0 and "--from" in r.output
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    r = run_cli("info", plain)
    assert r.exit_code == 1 and "Error: " in r.output and "no generation parameters" in " ".join(r.output.split())
    r = run_cli("info", tmp_path / "missing.png")
    assert r.exit_code == 1 and "Error: no such image" in " ".join(r.output.split())


def test_attach_samples_to_the_library(tiny_sd_dir, lib, tmp_path):
    r = run_cli("sample", "a photo of <cat-toy>", "-m", tiny_sd_dir, "-L", lib.root, "-n", 2, "--steps", 1,
            "-o", tmp_path / "o", "--attach")
    assert r.exit_code == 0, r.output
    samples = lib.samples("<cat-toy>")
    assert len(samples) == 2
    assert read_parameters(samples[0])["prompt"] == "a photo of <cat-toy>"  # metadata kept in the library copy


def test_compose_and_edit_commands(tiny_sd_dir, lib, tmp_path):
    out = tmp_path / "c"
    r = run_cli("compose", "<cat-toy>", "cat", "-t", "a photo of {}", "-t", "a painting of {}", "--seeds", 2,
            "--steps", 1, "-m", tiny_sd_dir, "-L", lib.root, "-o", out, "--name", "g")
    assert r.exit_code == 0, r.output
    grid = Image.open(out / "g.png")
    assert grid.width > 4 * 128 and grid.height > 2 * 128
    assert len(list((out / "g").glob("r*-c*.png"))) == 8
    info = run_cli("info", out / "g.png")
    assert "<cat-toy> | cat" in info.output

    src = tmp_path / "src.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(src)
    mask = tmp_path / "mask.png"
    m = Image.new("L", (16, 16), 0)
    m.paste(255, (0, 0, 8, 16))
    m.save(mask)
    r = run_cli("edit", src, "a photo of <cat-toy>", "--mask", mask, "--steps", 2, "-m", tiny_sd_dir, "-L", lib.root,
            "-o", out)
    assert r.exit_code == 0, r.output
    edited = next(out.glob("*-edit.png"))
    a, b = np.asarray(Image.open(edited)), np.asarray(Image.open(src))
    assert np.array_equal(a[:, 8:], b[:, 8:])
    assert read_parameters(edited)["edit"] == "inpaint"


def test_info_imports_no_torch(tmp_path):
    img = Image.new("RGB", (4, 4))
    img.info["parameters"] = "p\nSteps: 1, Sampler: DDIM, CFG scale: 1, Seed: 0, Size: 8x8"
    from ticraft.generate.pngmeta import save_png

    path = save_png(img, tmp_path / "a.png")
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom ticraft.cli.main import app\n"
        f"r = CliRunner().invoke(app, ['info', {str(path)!r}])\nassert r.exit_code == 0, r.output\n"
        "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\nprint(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
