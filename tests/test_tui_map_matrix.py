"""The TUI's Map reads the library's cached vector matrix, not one concept file per concept (issue 14, item 4).

``RealBackend.map_points`` must hand ``build_map`` the ``ConceptMatrix`` of ``Library.matrix(dims=model dims)``:
``Library.get`` is never called, every concept file is read at most once (to build the matrix), and a new
process (a new ``Library`` on the same folder) reads none. Concepts of other widths or families stay off the map,
per-layer (XTI) concepts are placed by the mean of all their rows, and SD3's three encoders work end to end.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from ticraft.concept import Concept
from ticraft.library import Library
from ticraft.library import vectors as library_vectors
from ticraft_tui.backend import RealBackend
from ticraft_tui.testing import make_library


def _forbid_get(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_get(self: Library, token: str) -> Concept:
        raise AssertionError(f"the map opened {token}'s file with Library.get")

    monkeypatch.setattr(Library, "get", no_get)


def _count_reads(monkeypatch: pytest.MonkeyPatch, *, forbid: bool = False) -> list[Path]:
    """Record (or forbid) every concept file the matrix opens one by one."""
    reads: list[Path] = []
    real = library_vectors._read_means

    def spy(path: Path) -> dict[str, torch.Tensor]:
        if forbid:
            raise AssertionError(f"the map read {path} although the matrix was cached on disk")
        reads.append(path)
        return real(path)

    monkeypatch.setattr(library_vectors, "_read_means", spy)
    return reads


# ---------------------------------------------------------------------- fast: a stand-in model, the real library
class _StubBackend(RealBackend):
    """The real library and map_points; a stand-in model (toy family, 8-d) and a recording build_map."""

    def backbone(self, progress: Any = None) -> Any:
        return SimpleNamespace(family="toy", dims={"clip": 8})


@pytest.fixture
def given(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What build_map receives; it answers one concept point per row."""
    import ticraft.analysis.maps as maps

    seen: list[Any] = []

    def fake_build_map(backbone: Any, concepts: Any, **options: Any) -> Any:
        seen.append(concepts)
        points = [SimpleNamespace(label=t, x=float(i), y=0.0, kind="concept") for i, t in enumerate(concepts.tokens)]
        return SimpleNamespace(points=points)

    monkeypatch.setattr(maps, "build_map", fake_build_map)
    return seen


def _mixed_library(root: Path) -> tuple[list[str], torch.Tensor]:
    """Four toy concepts (8-d) plus ones that must stay off (other width, other family) or on (no family, XTI).

    Returns the tokens the map must show, in library order, and the XTI concept's expected mean.
    """
    lib = make_library(root, 4, images=False)
    gen = torch.Generator().manual_seed(1)
    layered = torch.randn(4, 8, generator=gen)  # 2 layers x 2 vectors
    lib.add(Concept("<layers>", {"clip": layered}, family="toy", meta={"xti_layers": 2, "method": "xti"}))
    lib.add(Concept("<no-family>", {"clip": torch.randn(1, 8, generator=gen)}))
    lib.add(Concept("<wide>", {"clip": torch.randn(1, 16, generator=gen)}, family="toy"))
    lib.add(Concept("<other-family>", {"clip": torch.randn(1, 8, generator=gen)}, family="sd1"))
    on_map = [e.token for e in lib.entries() if e.token not in ("<wide>", "<other-family>")]
    return on_map, layered.mean(0)


def test_map_reads_the_matrix_not_each_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            given: list[Any]) -> None:
    on_map, layered_mean = _mixed_library(tmp_path / "lib")
    _forbid_get(monkeypatch)
    reads = _count_reads(monkeypatch)

    backend = _StubBackend(Library(tmp_path / "lib"), "stub")
    points = backend.map_points("pca", vocab=10)
    assert [p.label for p in points] == on_map
    assert hasattr(given[-1], "means"), "build_map must get the library's ConceptMatrix"
    assert given[-1].tokens == on_map and given[-1].dims == {"clip": 8}
    row = given[-1].tokens.index("<layers>")
    torch.testing.assert_close(given[-1].means["clip"][row], layered_mean)  # the mean of all L*N rows
    # Built once: each 8-d concept's file read at most once, never the 16-d one, nothing on the second map.
    assert len(reads) == len(set(reads)) <= len(on_map) + 1
    assert not [p for p in reads if "wide" in str(p)]
    before = len(reads)
    backend.map_points("pca", vocab=10)
    assert len(reads) == before

    # A new process (a new Library on the same folder) reads the cached matrix file, no concept file.
    _count_reads(monkeypatch, forbid=True)
    assert [p.label for p in _StubBackend(Library(tmp_path / "lib"), "stub").map_points("pca")] == on_map


def test_map_follows_library_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: list[Any]) -> None:
    """The cached matrix is invalidated by the index: a concept added or removed shows on the next map."""
    lib = make_library(tmp_path / "lib", 3, images=False)
    backend = _StubBackend(lib, "stub")
    first = [p.label for p in backend.map_points("pca")]
    lib.add(Concept("<late>", {"clip": torch.ones(1, 8)}, family="toy"))
    lib.remove(first[0])
    _forbid_get(monkeypatch)
    reads = _count_reads(monkeypatch)
    labels = [p.label for p in backend.map_points("pca")]
    assert labels == [e.token for e in lib.entries()] and "<late>" in labels and first[0] not in labels
    assert [p.parent.name for p in reads] == [lib.entry("<late>").folder.name]  # only the new concept's file


# ---------------------------------------------------------------------- real: the tiny SD3 model, three encoders
def test_map_of_sd3_concepts_from_the_matrix(tiny_sd3_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICRAFT_CACHE", str(tmp_path / "cache"))
    from ticraft.generate.sample import cached_backbone

    dims = cached_backbone(str(tiny_sd3_dir)).dims
    assert set(dims) == {"clip_l", "clip_g", "t5"}
    gen = torch.Generator().manual_seed(0)
    lib = Library(tmp_path / "lib")
    lib.add(Concept("<sd3-a>", {k: torch.randn(1, d, generator=gen) for k, d in dims.items()}, family="sd3"))
    lib.add(Concept("<sd3-xti>", {k: torch.randn(4, d, generator=gen) for k, d in dims.items()}, family="sd3",
                    meta={"xti_layers": 2, "method": "xti"}))
    lib.add(Concept("<toy>", {"clip": torch.randn(1, 64, generator=gen)}, family="toy"))  # another model's
    _forbid_get(monkeypatch)

    points = RealBackend(lib, str(tiny_sd3_dir)).map_points("pca", vocab=50)
    assert sorted(p.label for p in points if p.kind == "concept") == ["<sd3-a>", "<sd3-xti>"]
    assert any(p.kind in ("vocab", "neighbor") for p in points)

    _count_reads(monkeypatch, forbid=True)  # a new process: the matrix comes from its cache file
    again = RealBackend(Library(tmp_path / "lib"), str(tiny_sd3_dir)).map_points("pca", vocab=50)
    assert again == points
