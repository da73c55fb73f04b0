"""Counted nouns: messages say "1 image" and "3 images", never "image(s)" (ticraft/wording.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ticraft.wording import counted, noun

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("n", "phrase", "want"), [
    (1, "image", "1 image"), (0, "image", "0 images"), (2, "image", "2 images"),
    (2, "half-built folder under .tmp/", "2 half-built folders under .tmp/"),
    (3, "index row without a healthy folder (gone)", "3 index rows without a healthy folder (gone)"),
    (1, "concept folder missing from the index", "1 concept folder missing from the index"),
    (4, "concept folder missing from the index", "4 concept folders missing from the index"),
])
def test_counted_makes_the_noun_plural_not_the_phrase(n: int, phrase: str, want: str) -> None:
    assert counted(n, phrase) == want


def test_an_irregular_plural_is_given() -> None:
    assert noun(2, "temp file of an interrupted write", "temp files of interrupted writes") == \
        "temp files of interrupted writes"
    assert noun(1, "temp file of an interrupted write", "temp files of interrupted writes") == \
        "temp file of an interrupted write"


def _message_strings(path: Path) -> list[tuple[int, str]]:
    """String literals and f-string parts of a module, docstrings left out (they are not messages)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_no_message_says_noun_s_in_brackets() -> None:
    hits = [f"{p.relative_to(ROOT)}:{line}: {text!r}"
            for folder in ("ticraft", "tui") for p in sorted((ROOT / folder).rglob("*.py"))
            for line, text in _message_strings(p) if re.search(r"[a-z]\(s\)", text)]
    assert not hits, "say it with ticraft.wording.counted instead:\n" + "\n".join(hits)
