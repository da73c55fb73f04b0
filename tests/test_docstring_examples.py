"""The docstrings' examples (``>>>``) run as tests, so an example in the API docs cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"ticraft": "ticraft", "tui": "ticraft_tui"}  # folder → import name


def _modules_with_examples() -> list[str]:
    out = []
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name != "__main__.py" and ">>>" in path.read_text(encoding="utf-8"):
                parts = path.relative_to(ROOT / folder).with_suffix("").parts
                parts = parts[:-1] if parts[-1] == "__init__" else parts
                out.append(".".join((package, *parts)))
    return out


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    assert len(MODULES) > 50 and "ticraft.wording" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"
