"""Scale without timing: the per-command work must not grow with the library (benchmarks/library_scale.py
measures the wall-clock ratios). Every command below is run against a 300-concept library while every
directory listing and every file opened is counted: list, show, tag, rename, rm and add must read no more
than they do on a 3-concept library."""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from ticraft.concept import Concept
from ticraft.library import Library


def concept(token: str, seed: int) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(1, 8, generator=g)}, family="toy")


def build(root: Path, n: int) -> Library:
    lib = Library(root)
    lib.add_many([concept(f"<c{i}>", i) for i in range(n)], tags=[[f"t{i % 3}"] for i in range(n)])
    lib.add_many([concept(f"<rm{i}>", 1000 + i) for i in range(2)])
    return lib


OPS: dict[str, Callable[[Library], Any]] = {
    "list": lambda lib: (lib.count(), lib.check(lib.page(0, 3))),  # a page of 3 on both: the CLI shows 50
    "show": lambda lib: (lib.entry("<c1>"), lib.meta("<c1>"), lib.get("<c1>"), lib.images("<c1>")),
    "search": lambda lib: (lib.count(tag="t1"), lib.page(0, 20, text="c1")),
    "tag": lambda lib: lib.tag("<c2>", add=["x"]),
    "rename": lambda lib: lib.rename("<c2>", "<renamed>"),
    "rm": lambda lib: lib.remove("<rm0>"),
    "add": lambda lib: lib.add(concept("<new>", 77)),
}


def count_io(monkeypatch: pytest.MonkeyPatch, fn: Callable[[], Any]) -> tuple[int, int]:
    """``(directory listings, files opened)`` while ``fn`` runs."""
    counts = {"dirs": 0, "opens": 0}
    real_scandir, real_listdir, real_open = os.scandir, os.listdir, builtins.open
    real_iterdir = Path.iterdir

    def scandir(*a: Any, **k: Any) -> Any:
        counts["dirs"] += 1
        return real_scandir(*a, **k)

    def listdir(*a: Any, **k: Any) -> Any:
        counts["dirs"] += 1
        return real_listdir(*a, **k)

    def iterdir(self: Path) -> Any:
        counts["dirs"] += 1
        return real_iterdir(self)

    def opener(*a: Any, **k: Any) -> Any:
        counts["opens"] += 1
        return real_open(*a, **k)

    with monkeypatch.context() as m:
        m.setattr(os, "scandir", scandir)
        m.setattr(os, "listdir", listdir)
        m.setattr(Path, "iterdir", iterdir)
        m.setattr(builtins, "open", opener)
        fn()
    return counts["dirs"], counts["opens"]


@pytest.mark.parametrize("op", list(OPS))
def test_work_per_command_does_not_grow_with_the_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         op: str) -> None:
    small, large = build(tmp_path / "small", 3), build(tmp_path / "large", 300)
    # A fresh Library object per command, as each CLI call is a new process.
    io_small = count_io(monkeypatch, lambda: OPS[op](Library(small.root)))
    io_large = count_io(monkeypatch, lambda: OPS[op](Library(large.root)))
    assert io_large[0] <= io_small[0] + 1 and io_large[1] <= io_small[1] + 2, (op, io_small, io_large)
    assert Library(large.root).problems() == []


def test_natural_order_and_pages(tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib")
    tokens = ["<c100>", "<c9>", "<C10>", "<c99>", "<b>", "<c1>", "<c010>"]
    lib.add_many([concept(t, i) for i, t in enumerate(tokens)])
    assert [e.token for e in lib.entries()] == ["<b>", "<c1>", "<c9>", "<C10>", "<c010>", "<c99>", "<c100>"]
    assert [e.token for e in lib.page(2, 3)] == ["<c9>", "<C10>", "<c010>"] and lib.count() == 7
    assert lib.page(7, 3) == [] and [e.token for e in lib.page(5, None)] == ["<c99>", "<c100>"]
    assert lib.count(text="c1") == 3 and lib.count(text="C10") == 2  # substring, any case (instr / FTS5 trigram)
