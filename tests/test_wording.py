"""Counted nouns: messages say "1 image" and "3 images", never "image(s)" (ticraft/wording.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ticraft.library.report import RepairReport, _describe
from ticraft.wording import counted, noun

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("n", "word", "want"), [
    (1, "image", "1 image"), (0, "image", "0 images"), (2, "image", "2 images"), (2, "index row", "2 index rows"),
])
def test_counted(n: int, word: str, want: str) -> None:
    assert counted(n, word) == want


def test_an_irregular_plural_is_given() -> None:
    assert (noun(1, "match", "matches"), noun(2, "match", "matches")) == ("match", "matches")


def test_the_repair_report_counts_the_noun_not_its_qualifier() -> None:
    """Two of each thing repair can find: every sentence puts the plural on the noun."""
    before = {"a": 1, "b": 1, "gone1": 1, "gone2": 1}
    after = {"a": 2, "b": 2, "new1": 1, "new2": 1}
    done = {"half_built": 2, "restored": ["x", "y"], "deleted": ["p", "q"], "swept": 2, "uncommitted": 2}
    report = RepairReport()
    _describe(report, done, before, after, was_new=False)
    assert report.found == [
        "2 half-built folders under .tmp/ (an add or rename cut short)",
        "2 parked folders under .trash/ still listed (a replace or remove cut short)",
        "2 parked folders under .trash/ no longer listed",
        "2 temp files left by interrupted writes",
        "2 new folders of an add or rename cut short before its commit",
        "2 concept folders missing from the index (new1, new2)",
        "2 index rows without a healthy folder (gone1, gone2)",
        "2 index rows out of date (a, b)",
    ]
    assert report.actions[-1] == "re-read their meta.json (2)"


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
