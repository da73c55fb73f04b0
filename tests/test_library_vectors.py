"""Library.matrix(): every concept's mean vector in one cached matrix, used by neighbours and maps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ticraft.library.vectors as vectors
from ticraft.analysis.neighbors import nearest_concepts
from ticraft.concept import Concept, cosine
from ticraft.library import Library


def concept(token: str, seed: int, n: int = 2, d: int = 8, family: str | None = "toy") -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(n, d, generator=g)}, family=family)


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    lib = Library(tmp_path / "lib")
    lib.add_many([concept(f"<c{i}>", i, n=1 + i % 3) for i in range(12)], tags=[["even"] if i % 2 == 0 else []
                                                                                for i in range(12)])
    lib.add(concept("<wide>", 99, d=16))  # another width: never in the d=8 matrix
    return lib


def test_matrix_holds_every_mean_in_natural_order(lib: Library) -> None:
    m = lib.matrix(dims={"clip": 8})
    assert m.tokens == [f"<c{i}>" for i in range(12)] and m.dims == {"clip": 8}
    for i, token in enumerate(m.tokens):
        assert torch.allclose(m.means["clip"][i], lib.get(token).vectors["clip"].float().mean(0))
        assert m.sha256[i] == lib.entry(token).sha256
    assert lib.matrix(dims={"clip": 8}, tag="even").tokens == [f"<c{i}>" for i in range(0, 12, 2)]
    assert lib.matrix(dims={"clip": 16}).tokens == ["<wide>"]
    assert lib.matrix().dims == {"clip": 8}  # the widths most entries have


def test_matrix_is_cached_until_the_index_changes(lib: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    first = lib.matrix(dims={"clip": 8})
    assert lib.matrix(dims={"clip": 8}) is first  # memory cache
    reads: list[str] = []
    real = vectors._read_means
    monkeypatch.setattr(vectors, "_read_means", lambda p: reads.append(p.parent.name) or real(p))
    other = Library(lib.root)  # a new process: one cache file, no concept file opened
    assert other.matrix(dims={"clip": 8}).tokens == first.tokens and reads == []
    lib.add(concept("<c12>", 12))
    lib.tag("<c3>", add=["x"])  # changes the generation, not the vectors: nothing re-read for it
    again = lib.matrix(dims={"clip": 8})
    assert again is not first and again.tokens[-1] == "<c12>" and reads == ["c12"]
    lib.remove("<c0>")
    assert "<c0>" not in lib.matrix(dims={"clip": 8}).tokens


def test_nearest_matches_concept_by_concept_ranking(lib: Library) -> None:
    query = lib.get("<c5>")
    candidates = [lib.get(e.token) for e in lib.entries() if e.dims == {"clip": 8}]
    slow = nearest_concepts(query, candidates, k=4)
    fast = nearest_concepts(query, lib.matrix(dims={"clip": 8}), k=4)
    assert [m.token for m in fast] == [m.token for m in slow] and "<c5>" not in [m.token for m in fast]
    for a, b in zip(fast, slow, strict=True):
        assert a.cosine == pytest.approx(b.cosine, abs=1e-6)
    assert fast[0].cosine == pytest.approx(cosine(query, lib.get(fast[0].token)), abs=1e-6)
    other_family = concept("<q>", 5, family="custom")
    assert nearest_concepts(other_family, lib.matrix(dims={"clip": 8}), k=3) == []  # families never mix


def test_a_broken_entry_is_left_off_the_matrix(lib: Library) -> None:
    (lib.entry("<c4>").embedding).write_bytes(b"garbage")
    assert "<c4>" not in lib.matrix(dims={"clip": 8}).tokens


def test_a_map_from_the_matrix_equals_the_map_from_concepts(bb, tmp_path: Path) -> None:
    from ticraft.analysis import maps

    lib = Library(tmp_path / "maplib")
    cat, dog = bb.token_vector("cat")["clip"], bb.token_vector("dog")["clip"]
    lib.add_many([Concept("<near-cat>", {"clip": cat + 0.001}, family=bb.family),
                  Concept("<two>", {"clip": torch.cat([dog, cat])}, family=bb.family)])
    concepts = [lib.get(e.token) for e in lib.entries()]
    by_concepts = maps.build_map(bb, concepts, method="pca", vocab=40, seed=1, neighbors=2, cache=False)
    by_matrix = maps.build_map(bb, lib.matrix(dims=bb.dims), method="pca", vocab=40, seed=1, neighbors=2, cache=False)
    assert [(p.label, p.kind) for p in by_matrix.points] == [(p.label, p.kind) for p in by_concepts.points]
    for a, b in zip(by_matrix.points, by_concepts.points, strict=True):
        assert a.x == pytest.approx(b.x, abs=1e-5) and a.y == pytest.approx(b.y, abs=1e-5)


def test_widths_match_in_any_key_order(tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib")
    g = torch.Generator().manual_seed(0)
    lib.add(Concept("<xl>", {"clip_l": torch.randn(1, 768, generator=g), "clip_g": torch.randn(1, 1280, generator=g)}))
    assert lib.matrix(dims={"clip_g": 1280, "clip_l": 768}).tokens == ["<xl>"]
    assert lib.matrix(dims={"clip_l": 768, "clip_g": 1280}).tokens == ["<xl>"]
    assert lib.matrix().tokens == ["<xl>"]
