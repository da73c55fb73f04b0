"""Health checks that check (issue 13, item 5): list flags damaged embedding files from their header and size,
repair says what it found and did, verify reads every vector and checks its sha256."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Callable

import pytest
import torch
from typer.testing import CliRunner

from ticraft.cli.main import app
from ticraft.concept import Concept
from ticraft.library import EMBEDDING, META, Library
from ticraft.library.canonical import encode_canonical


def concept(token: str, seed: int = 0, n: int = 2, d: int = 8) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(n, d, generator=g)}, family="toy")


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    assert "Traceback" not in result.output, result.output
    return result.exit_code, re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    lib = Library(tmp_path / "lib")
    lib.add_many([concept("<ok>", 1), concept("<victim>", 2)])
    return lib


def _missing(path: Path) -> None:
    path.unlink()


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])


def _not_safetensors(path: Path) -> None:
    path.write_bytes(os.urandom(8) + b"{not json at all" * 4)


def _other_shape(path: Path) -> None:  # a valid library file, but not what the index recorded
    path.write_bytes(encode_canonical(concept("<victim>", 3, n=3, d=8)))


def _other_token(path: Path) -> None:
    path.write_bytes(encode_canonical(concept("<impostor>", 2)))


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (_missing, "embedding.safetensors is missing"),
    "truncated": (_truncated, "is truncated"),
    "not-safetensors": (_not_safetensors, "not a safetensors file"),
    "header-disagrees-shape": (_other_shape, "header holds clip 3×8, but the index says clip 2×8"),
    "header-disagrees-token": (_other_token, "header names token '<impostor>', but the index says '<victim>'"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_list_flags_a_damaged_embedding(lib: Library, case: str) -> None:
    damage, reason = DAMAGE[case]
    damage(lib.entry("<victim>").embedding)
    assert reason in lib.check(lib.entries()).get("<victim>", "") and "<ok>" not in lib.check(lib.entries())
    code, out = cli("library", "list", "-L", str(lib.root))
    assert code == 0 and "1 problem" in out and "victim: embedding.safetensors" in out and reason in out
    assert re.search(r"! <victim>", out) and not re.search(r"! <ok>", out)
    entries, problems = lib.listing()
    assert [e.token for e in entries] == ["<ok>"] and len(problems) == 1 and reason in problems[0]
    code, out = cli("library", "show", "victim", "-L", str(lib.root))
    assert code == 1 and reason in out  # show names the damage instead of a decoding error
    code, out = cli("library", "repair", "-L", str(lib.root))
    assert code == 0 and "1 problem remains (left in place)" in out and "victim" in out
    assert (lib.root / "victim" / META).is_file()  # never deleted


def test_a_healthy_library_lists_without_flags(lib: Library) -> None:
    code, out = cli("library", "list", "-L", str(lib.root))
    assert code == 0 and "problem" not in out and "!" not in out
    assert lib.check(lib.entries()) == {} and lib.verify() == []


def test_verify_reads_every_vector_and_checks_the_hash(lib: Library) -> None:
    path = lib.entry("<victim>").embedding
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # one vector byte changed: header and size are untouched
    path.write_bytes(bytes(data))
    assert lib.check(lib.entries()) == {}  # the cheap check cannot see it…
    code, out = cli("library", "verify", "-L", str(lib.root))
    assert code == 1 and "victim: embedding.safetensors vectors hash to" in out and "changed or damaged" in out
    assert "ok:" not in out
    code, out = cli("library", "verify", "-L", str(Library(lib.root.parent / "empty").root))
    assert code == 0 and "All 0 concepts" in out


def test_verify_passes_a_healthy_library(lib: Library) -> None:
    code, out = cli("library", "verify", "-L", str(lib.root))
    assert code == 0 and "All 2 concepts" in out and "sha256 matches" in out


def test_verify_finds_non_finite_values(lib: Library) -> None:
    from safetensors.torch import save

    from ticraft.library.canonical import header_metadata

    folder = lib.entry("<ok>").folder  # written by hand: Concept itself refuses NaN
    (folder / EMBEDDING).write_bytes(save({"clip": torch.tensor([[1.0, float("nan")]])},
                                          metadata=header_metadata("<ok>", "toy", {})))
    meta = (folder / META).read_text()
    from ticraft.library.canonical import _tensor_sha256, read_safetensors_header

    raw = (folder / EMBEDDING).read_bytes()
    header, start = read_safetensors_header(raw)
    sha = _tensor_sha256(header, raw, start, EMBEDDING)
    old_sha = lib.entry("<ok>").sha256
    (folder / META).write_text(meta.replace(old_sha, sha).replace('"num_vectors": 2', '"num_vectors": 1')
                               .replace('"clip": 8', '"clip": 2'))
    problems = lib.verify()
    assert len(problems) == 1 and problems[0].startswith("ok:") and "NaN or infinite" in problems[0]


def test_repair_says_what_it_found_and_what_it_did(lib: Library, tmp_path: Path) -> None:
    lib.add(concept("<gone>", 5))
    root = lib.root
    (root / ".tmp" / "half.1234").mkdir(parents=True)  # an add cut short
    (root / ".tmp" / "half.1234" / EMBEDDING).write_bytes(b"partial")
    shutil.copytree(root / "ok", root / ".trash" / "parked")  # a removal cut short, no longer listed
    (root / "ok" / ".meta.json.123-abcd.tmp").write_bytes(b"{")  # an atomic write cut short
    shutil.rmtree(root / "gone")  # deleted by hand
    other = Library(tmp_path / "other")
    other.add(concept("<handmade>", 6))
    shutil.copytree(other.root / "handmade", root / "handmade")  # copied in by hand
    code, out = cli("library", "repair", "-L", str(root))
    assert code == 0, out
    for text in ("Found:", "1 half-built folder under .tmp/", "1 parked folder under .trash/ no longer listed",
                 "1 temp file left by interrupted writes", "1 concept folder missing from the index (handmade)",
                 "1 index row without a healthy folder (gone)", "Did:", "indexed them", "removed the rows",
                 "Index rebuilt: 3 concepts"):
        assert text in out, (text, out)
    assert not (root / ".tmp").exists() and not list((root / ".trash").glob("*"))
    assert not list(root.rglob(".*.tmp")) and [e.token for e in Library(root).entries()] == ["<handmade>", "<ok>",
                                                                                             "<victim>"]
