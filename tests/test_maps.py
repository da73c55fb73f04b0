"""Maps: PNG + JSON + CSV written, deterministic for a seed, cached per model/method/seed (PCA by default; UMAP slow)."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from ticraft.analysis import maps
from ticraft.concept import Concept
from ticraft.errors import TicraftError


@pytest.fixture()
def concepts(bb):
    cat = bb.token_vector("cat")["clip"]
    return [Concept("<near-cat>", {"clip": cat + 0.001}, family=bb.family),
            Concept("<two>", {"clip": torch.cat([bb.token_vector("dog")["clip"], bb.token_vector("toy")["clip"]])},
                    family=bb.family)]


def test_pca_map_files_and_determinism(bb, concepts, tmp_path):
    m1 = maps.build_map(bb, concepts, method="pca", vocab=60, seed=3, neighbors=3, cache=False)
    m2 = maps.build_map(bb, concepts, method="pca", vocab=60, seed=3, neighbors=3, cache=False)
    assert m1.points == m2.points
    kinds = [p.kind for p in m1.points]
    assert kinds.count("concept") == 2 and 1 <= kinds.count("neighbor") <= 6
    assert kinds.count("vocab") + kinds.count("neighbor") >= 60
    cat = next(p for p in m1.points if p.label == "cat")
    assert cat.kind == "neighbor" and "<near-cat>" in cat.near  # neighbours are always on the map, highlighted

    a = m1.save(tmp_path / "a" / "map.png")
    b = m2.save(tmp_path / "b" / "map.png")
    assert set(a) == {"png", "json", "csv"} and all(p.is_file() for p in a.values())
    for kind in a:
        assert a[kind].read_bytes() == b[kind].read_bytes(), kind  # byte-identical, PNG included
    data = json.loads(a["json"].read_text())
    assert data["method"] == "pca" and data["seed"] == 3 and len(data["points"]) == len(m1.points)
    rows = list(csv.DictReader(a["csv"].open()))
    assert len(rows) == len(m1.points) and rows[-1]["kind"] == "concept"
    assert float(rows[0]["x"]) == m1.points[0].x  # full precision in the CSV


def test_seed_changes_the_vocabulary_sample(bb):
    m0 = maps.build_map(bb, [], method="pca", vocab=30, seed=0, cache=False)
    m1 = maps.build_map(bb, [], method="pca", vocab=30, seed=1, cache=False)
    assert {p.label for p in m0.points} != {p.label for p in m1.points}
    everything = maps.build_map(bb, [], method="pca", vocab="all", seed=0, cache=False)
    assert len(everything.points) == maps.sample_vocab(
        __import__("ticraft.analysis.neighbors", fromlist=["x"]).vocab_index(bb).valid, "all", 0).size


def test_maps_are_cached_per_model_method_seed(bb, concepts, monkeypatch):
    first = maps.build_map(bb, concepts, method="pca", vocab=40, seed=5)
    monkeypatch.setattr(maps, "_embed", lambda *a, **k: pytest.fail("not served from the cache"))
    assert maps.build_map(bb, concepts, method="pca", vocab=40, seed=5).points == first.points
    with pytest.raises(BaseException):  # a different seed is a different map: recomputed
        maps.build_map(bb, concepts, method="pca", vocab=40, seed=6)


def test_clear_errors(bb, concepts, tmp_path):
    with pytest.raises(TicraftError, match="method"):
        maps.build_map(bb, concepts, method="tsne")  # type: ignore[arg-type]
    with pytest.raises(TicraftError, match="vocab"):
        maps.build_map(bb, concepts, method="pca", vocab="lots")
    with pytest.raises(TicraftError):
        maps.build_map(bb, [Concept("<w>", {"clip": torch.randn(1, 768)}, family="sd1")], method="pca")
    m = maps.build_map(bb, concepts, method="pca", vocab=20, cache=False)
    with pytest.raises(TicraftError, match="PNG"):
        m.save(tmp_path / "map.jpg")


@pytest.mark.slow
def test_umap_map_is_deterministic(bb, concepts, tmp_path):
    # slow: umap-learn's numba JIT takes ~20-30 s in a fresh process
    m1 = maps.build_map(bb, concepts, method="umap", vocab=40, seed=0, cache=False)
    m2 = maps.build_map(bb, concepts, method="umap", vocab=40, seed=0, cache=False)
    assert m1.points == m2.points
    paths = m1.save(tmp_path / "umap.png")
    assert paths["png"].stat().st_size > 1000
