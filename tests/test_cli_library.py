"""`ticraft library …` through typer's CliRunner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ticraft.cli.main import app
from ticraft.concept import Concept
from ticraft.library import MANIFEST, META, Library


def concept(token: str = "<cat-toy>", n: int = 2, d: int = 768, seed: int = 0, **meta) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(n, d, generator=g)}, meta=dict(meta))


def sdxl(token: str = "<xl>") -> Concept:
    return Concept(token, {"clip_l": torch.ones(1, 768), "clip_g": torch.zeros(1, 1280)})


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    return Library(tmp_path / "lib")


def run(runner: CliRunner, *args: str, input: str | None = None, ok: bool = True):
    result = runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})
    if ok:
        assert result.exit_code == 0, result.output
    return result


def flat(text: str) -> str:
    """Output with Rich panel borders and line wrapping removed, so messages can be searched."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


def fails(result, *phrases: str) -> None:
    """A user error: exit code 1, one clean 'Error' message containing ``phrases``, no traceback."""
    text = flat(result.output)
    assert result.exit_code == 1, result.output
    assert "Error" in text and "Traceback" not in result.output, result.output
    for phrase in phrases:
        assert phrase in text, (phrase, result.output)


def write_png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (4, 4), (1, 2, 3)).save(path)
    return path


def test_list_empty_and_resolution(runner: CliRunner, lib: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run(runner, "library", "list", "--library", str(lib.root)).output
    assert "No concepts" in out and "ticraft library import" in out
    monkeypatch.setenv("TICRAFT_LIBRARY", str(lib.root))
    assert run(runner, "library", "path").output.strip() == str(lib.root)


def test_list_filters_and_problems(runner: CliRunner, lib: Library) -> None:
    lib.add(concept("<cat-toy>", steps=500, initializer="cat"), tags=["object"])
    lib.add(concept("<wavy>", seed=1), tags=["style"])
    lib.add(sdxl())
    out = run(runner, "library", "list", "-L", str(lib.root)).output
    for text in ("<cat-toy>", "<wavy>", "<xl>", "sd1", "sdxl", "500", "object", "768", "clip_l 768 + clip_g 1280",
                 "3 concepts"):
        assert text in out
    out = run(runner, "library", "list", "-L", str(lib.root), "--tag", "style").output
    assert "<wavy>" in out and "<cat-toy>" not in out and "1 match" in out
    out = run(runner, "library", "list", "-L", str(lib.root), "--family", "sdxl").output
    assert "<xl>" in out and "<wavy>" not in out
    out = run(runner, "library", "list", "-L", str(lib.root), "--search", "CAT").output
    assert "<cat-toy>" in out and "<xl>" not in out
    out = run(runner, "library", "list", "-L", str(lib.root), "--tag", "nothing").output
    assert "No concept matches" in out
    (lib.root / "wavy" / META).write_text("{")
    (lib.root / MANIFEST).write_text("garbage")  # a manifest of an old ticraft is no longer read
    result = run(runner, "library", "list", "-L", str(lib.root))
    assert "<cat-toy>" in result.output
    assert "1 problem:" in result.output and "wavy: meta.json is unreadable" in flat(result.output)


def test_list_pages_in_natural_order(runner: CliRunner, lib: Library) -> None:
    lib.add_many([concept(f"<c{i}>", seed=i) for i in (100, 9, 99, 10, 1)], tags=["n"])
    out = run(runner, "library", "list", "-L", str(lib.root)).output
    order = [t for t in re.findall(r"<c\d+>", out)]
    assert order == ["<c1>", "<c9>", "<c10>", "<c99>", "<c100>"]
    out = run(runner, "library", "list", "-L", str(lib.root), "--limit", "2", "--offset", "1").output
    assert re.findall(r"<c\d+>", out) == ["<c9>", "<c10>"] and "showing 2–3" in out and "--offset 3" in out
    assert re.findall(r"<c\d+>", run(runner, "library", "list", "-L", str(lib.root), "--all").output) == order
    both = runner.invoke(app, ["library", "list", "-L", str(lib.root), "-n", "1", "--all"])
    assert both.exit_code != 0 and "--all" in both.output  # a limit and no limit: refused, not one of them ignored


def test_show(runner: CliRunner, lib: Library) -> None:
    c = concept(steps=100, initializer="cat", loss=[0.1] * 50)
    lib.add(c, tags=["object"], images=[write_png(lib.root.parent / "a.png")])
    lib.add_samples("<cat-toy>", [write_png(lib.root.parent / "s.png")])
    out = run(runner, "library", "show", "cat-toy", "-L", str(lib.root)).output
    for text in ("<cat-toy>", "sd1", "object", "100", "cat", c.sha256(), "vector norms", "[50 values]",
                 f"{c.norms()['clip'][0]:.4f}", f"{c.norms()['clip'][1]:.4f}", "images (1)", "a.png",
                 "samples (1)", "sample-0001.png"):
        assert text in out, text


def test_unknown_token_is_one_clean_error(runner: CliRunner, lib: Library) -> None:
    lib.add(concept())
    for cmd in (["show", "<dog>"], ["rm", "<dog>", "--yes"], ["tag", "<dog>", "--add", "x"], ["rename", "<dog>", "<cat>"],
                ["export", "<dog>", str(lib.root.parent)]):
        fails(run(runner, "library", *cmd, "-L", str(lib.root), ok=False), "no concept '<dog>'", "<cat-toy>")


def test_import_export_convert(runner: CliRunner, lib: Library, tmp_path: Path) -> None:
    from ticraft.formats import detect_layout, read_concept, write_concept

    c = concept("<orig>", steps=10)
    [src] = write_concept(c, tmp_path / "orig.pt", layout="a1111")
    photos = tmp_path / "photos"
    photos.mkdir()
    write_png(photos / "p.png")
    out = run(runner, "library", "import", str(src), "--token", "<cat-toy>", "--tag", "object", "--tag", "cute",
              "--images", str(photos), "-L", str(lib.root)).output
    assert "Imported <cat-toy>" in out and "1 image)" in out
    entry = lib.entry("<cat-toy>")
    assert entry.tags == ("object", "cute") and entry.steps == 10 and entry.sha256 == c.sha256()
    fails(run(runner, "library", "import", str(src), "--token", "<cat-toy>", "-L", str(lib.root), ok=False),
          "already in the library", "--overwrite")
    run(runner, "library", "import", str(src), "--token", "<cat-toy>", "--overwrite", "-L", str(lib.root))

    for fmt, name, layout in (("diffusers", "e.safetensors", "diffusers"), ("kohya", "k.safetensors", "kohya"),
                              (None, "a.pt", "a1111")):
        args = ["library", "export", "<cat-toy>", str(tmp_path / name), "-L", str(lib.root)]
        out = run(runner, *args, *(["--format", fmt] if fmt else [])).output
        assert f"({layout})" in out and detect_layout(tmp_path / name) == layout
        assert torch.equal(read_concept(tmp_path / name).vectors["clip"], c.vectors["clip"])
        fails(run(runner, *args, *(["--format", fmt] if fmt else []), ok=False), "already exists", "--force")
    result = run(runner, "library", "export", "<cat-toy>", str(tmp_path / "x"), "--format", "paper", ok=False)
    assert result.exit_code == 2  # click rejects the choice
    # --model without --flatten was accepted and ignored (an export never loads a model)
    fails(run(runner, "library", "export", "<cat-toy>", str(tmp_path / "y.pt"), "-L", str(lib.root), "--model",
              "toy", ok=False), "apply only with --flatten")
    assert not (tmp_path / "y.pt").exists()

    out = run(runner, "library", "convert", str(tmp_path / "e.safetensors"), str(tmp_path / "c.pt"),
              "--token", "<renamed>").output
    assert "(a1111, <renamed>)" in out
    back = read_concept(tmp_path / "c.pt")
    assert back.token == "<renamed>" and torch.equal(back.vectors["clip"], c.vectors["clip"])
    run(runner, "library", "convert", str(tmp_path / "c.pt"), str(tmp_path / "c.safetensors"), "--format", "kohya")
    assert detect_layout(tmp_path / "c.safetensors") == "kohya"
    fails(run(runner, "library", "convert", str(tmp_path / "missing.pt"), str(tmp_path / "z.pt"), ok=False),
          "no such file")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"")
    fails(run(runner, "library", "import", str(bad), "-L", str(lib.root), ok=False), "bad.safetensors")


def test_import_checks_every_file_first(runner: CliRunner, lib: Library, tmp_path: Path) -> None:
    from ticraft.formats import write_concept

    good = write_concept(concept("<a>"), tmp_path / "a.safetensors")[0]
    bad = tmp_path / "b.safetensors"
    bad.write_bytes(b"\x00" * 10)
    fails(run(runner, "library", "import", str(good), str(bad), "-L", str(lib.root), ok=False), "b.safetensors")
    assert not lib.has("<a>")  # the good file was not imported either
    fails(run(runner, "library", "import", str(good), str(good), "--token", "<x>", "-L", str(lib.root), ok=False),
          "one at a time")
    out = run(runner, "library", "import", str(good), "-L", str(lib.root)).output
    assert "Imported <a>" in out


def test_convert_multi_concept_file(runner: CliRunner, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    src = tmp_path / "two.safetensors"
    save_file({"<a>": torch.ones(1, 768), "<b>": torch.zeros(1, 768)}, str(src))
    fails(run(runner, "library", "convert", str(src), str(tmp_path / "x.pt"), ok=False), "give an existing folder")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run(runner, "library", "convert", str(src), str(out_dir), "--format", "a1111")
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.pt", "b.pt"]


def test_tag_rename_rm(runner: CliRunner, lib: Library) -> None:
    lib.add(concept(), tags=["old"])
    out = run(runner, "library", "tag", "<cat-toy>", "--add", "new", "-a", "more", "--remove", "old",
              "-L", str(lib.root)).output
    assert "new, more" in out and lib.entry("<cat-toy>").tags == ("new", "more")
    assert "new, more" in run(runner, "library", "tag", "cat-toy", "-L", str(lib.root)).output
    fails(run(runner, "library", "tag", "cat-toy", "--add", "two words", "-L", str(lib.root), ok=False),
          "without spaces")

    out = run(runner, "library", "rename", "cat-toy", "<kitty>", "-L", str(lib.root)).output
    assert "<cat-toy> → <kitty>" in out and lib.has("<kitty>") and not lib.has("<cat-toy>")

    result = run(runner, "library", "rm", "<kitty>", "-L", str(lib.root), input="n\n", ok=False)
    assert result.exit_code == 1 and "Aborted" in result.output and lib.has("<kitty>")
    out = run(runner, "library", "rm", "<kitty>", "-L", str(lib.root), input="y\n").output
    assert "Removed <kitty>" in out and not lib.has("<kitty>")
    lib.add(concept("<b>"))
    run(runner, "library", "rm", "b", "--yes", "-L", str(lib.root))
    assert lib.entries() == []


def test_repair(runner: CliRunner, lib: Library) -> None:
    import shutil

    from ticraft.library.index import INDEX_DIR

    lib.add(concept())
    shutil.rmtree(lib.root / INDEX_DIR)
    out = flat(run(runner, "library", "repair", "-L", str(lib.root)).output)
    assert "Found: • no index yet" in out and "built the index from 1 concept folder" in out and "1 concept in" in out
    assert Library(lib.root).problems() == [] and not (lib.root / MANIFEST).exists()
    out = flat(run(runner, "library", "repair", "-L", str(lib.root)).output)
    assert "1 concept folder, all matching the index" in out and "nothing needed changing" in out


def test_show_says_where_a_searched_run_started(runner: CliRunner, lib: Library) -> None:
    searched = {"words": ["orange", "star"], "loss": 0.13, "given_loss": 0.16, "ranked": [["orange", 0.14]]}
    lib.add(concept(steps=64, initializer="shape", init_search=searched))
    out = run(runner, "library", "show", "cat-toy", "-L", str(lib.root)).output
    assert "shape (started from 'orange star', searched from the pictures)" in " ".join(out.split())
    assert "given_loss" not in out  # not repeated as a raw meta row
