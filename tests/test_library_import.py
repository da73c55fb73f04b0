"""`ticraft library import DIR --recursive` over a webui/ComfyUI embeddings folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ticraft.cli.main import app
from ticraft.concept import Concept
from ticraft.formats import write_concept
from ticraft.library import Library
from ticraft.library.bulk import import_folder


def concept(token: str, seed: int, n: int = 1) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(n, 768, generator=g)})


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    assert "Traceback" not in result.output, result.output
    return result.exit_code, re.sub(r"\s+", " ", result.output)


@pytest.fixture
def webui(tmp_path: Path) -> Path:
    """An embeddings folder as people keep them: sub-folders, a duplicate, a broken file, notes and previews."""
    from PIL import Image

    root = tmp_path / "embeddings"
    (root / "styles" / "oil paint").mkdir(parents=True)
    (root / ".cache").mkdir()
    write_concept(concept("<whatever-name-inside>", 1), root / "bad_prompt.pt", layout="a1111")
    write_concept(concept("<x>", 2, n=2), root / "styles" / "oil paint" / "impasto.safetensors", layout="diffusers")
    write_concept(concept("<copy>", 1), root / "styles" / "same_as_bad_prompt.pt", layout="a1111")
    write_concept(concept("<hidden>", 3), root / ".cache" / "hidden.pt", layout="a1111")
    write_concept(concept("<top>", 4), root / "styles" / "top level only.pt", layout="a1111")
    (root / "broken.pt").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "styles" / "empty.safetensors").write_bytes(b"")
    (root / "README.txt").write_text("my embeddings")
    Image.new("RGB", (4, 4)).save(root / "bad_prompt.preview.png")
    return root


def test_recursive_import_of_an_embeddings_folder(webui: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib")
    lib.add(concept("<already>", 4), tags=["mine"])  # same vectors as "top level only.pt"
    code, out = cli("library", "import", str(webui), "--recursive", "--tag", "webui", "-L", str(lib.root))
    assert code == 1, out  # two files were refused: said, with the rest imported
    assert "Imported 2 concepts" in out and "2 duplicates skipped" in out and "2 refused" in out
    assert "2 other files ignored" in out  # README.txt and the preview picture
    assert re.search(r"skipped \S*same_as_bad_prompt\.pt: same vectors as <bad_prompt>", out)
    assert re.search(r"skipped \S*top level only\.pt: same vectors as <already>", out)
    assert re.search(r"refused \S*broken\.pt: ", out) and re.search(r"refused \S*empty\.safetensors: ", out)
    assert out.count("refused ") == 2
    entries = {e.token: e for e in lib.entries()}
    assert sorted(entries) == ["<already>", "<bad_prompt>", "<impasto>"]  # webui names: the file name is the word
    assert entries["<bad_prompt>"].tags == ("webui",) and entries["<bad_prompt>"].source == "bad_prompt.pt"
    assert entries["<impasto>"].tags == ("styles", "oil-paint", "webui") and entries["<impasto>"].num_vectors == 2
    assert lib.meta("<bad_prompt>")["meta"]["source_token"] == "<whatever-name-inside>"
    assert lib.problems() == [] and not (lib.root / ".tmp").exists()
    # again: everything is now a duplicate, nothing new is written
    code, out = cli("library", "import", str(webui), "-r", "-L", str(lib.root))
    assert "Imported 0 concepts" in out and "4 duplicates skipped" in out and len(lib.entries()) == 3


def test_without_recursive_only_the_top_folder(webui: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib")
    report = import_folder(lib, webui, recursive=False)
    assert [e.token for e in report.added] == ["<bad_prompt>"]
    assert [p.name for p, _ in report.refused] == ["broken.pt"]


def test_a_token_taken_by_other_vectors_is_refused_and_nothing_is_half_written(webui: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib")
    lib.add(concept("<impasto>", 99))
    report = import_folder(lib, webui)
    assert [(p.name, "already in the library" in r) for p, r in report.refused if p.name == "impasto.safetensors"] == [
        ("impasto.safetensors", True)]
    assert lib.entry("<impasto>").sha256 == concept("<impasto>", 99).sha256()  # untouched
    code, out = cli("library", "import", str(webui / "nope"), "-r", "-L", str(lib.root))
    assert code == 1 and "nope" in out
