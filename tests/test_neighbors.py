"""Nearest tokens: a word finds its own row first, one matmul equals a naive search, norms, caches, concepts."""

from __future__ import annotations

import pytest
import torch

from ticraft.analysis import neighbors as nb
from ticraft.concept import Concept
from ticraft.errors import TicraftError


@pytest.fixture(autouse=True)
def _fresh_memory():
    nb.clear_memory_cache()
    yield
    nb.clear_memory_cache()


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_every_word_finds_its_own_row_first(bb, metric):
    from tiny_models import WORDS

    tok = bb.encoders[0].tokenizer
    single = [w for w in WORDS if len(tok(w, add_special_tokens=False)["input_ids"]) == 1]
    assert len(single) >= 20  # the tiny BPE makes most test words one token
    for word in single:
        (wid,) = tok(word, add_special_tokens=False)["input_ids"]
        first = nb.find_neighbors(bb, word, k=3, metric=metric).rows[0].matches[0]
        assert (first.token, first.id) == (word, wid)
        assert first.score == pytest.approx(1.0 if metric == "cosine" else 0.0, abs=1e-3)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_every_vocabulary_row_is_its_own_nearest(bb, metric):
    index = nb.vocab_index(bb)
    rows = index.valid.nonzero().flatten()
    _, ids = nb.nearest_rows(index, index.table[rows], 1, metric)  # all rows at once: one matmul
    assert ids[:, 0].tolist() == rows.tolist()


def test_one_matmul_matches_a_naive_search():
    g = torch.Generator().manual_seed(0)
    table = torch.randn(500, 24, generator=g)
    index = nb._index_from_table("clip", "fp", [f"t{i}" for i in range(500)], table)
    queries = torch.randn(7, 24, generator=g)
    scores, ids = nb.nearest_rows(index, queries, 5, "cosine")
    for q, s_row, i_row in zip(queries, scores, ids):
        naive = torch.tensor([float(torch.nn.functional.cosine_similarity(q, r, dim=0)) for r in table])
        top = naive.topk(5)
        assert i_row.tolist() == top.indices.tolist()
        assert torch.allclose(s_row, top.values, atol=1e-5)
    d, ids = nb.nearest_rows(index, queries, 5, "l2")
    exact = torch.cdist(queries.double(), table.double())
    top = exact.topk(5, largest=False)
    assert ids.tolist() == top.indices.tolist()
    assert torch.allclose(d.double(), top.values, atol=1e-4)


def test_special_and_unreachable_rows_are_never_neighbours(bb):
    enc = bb.encoders[0]
    eos = enc.tokenizer.eos_token_id
    q = Concept("<q>", {"clip": enc.table[eos].detach().clone()[None]}, family=bb.family)
    report = nb.find_neighbors(bb, q, k=10)
    assert all(m.id != eos and m.token not in nb.SPECIAL_TOKENS for m in report.rows[0].matches)
    # rows the tokenizer cannot produce ("<id>") are masked as well
    index = nb._index_from_table("k", "fp", ["a", "<1>", "<|endoftext|>", "b"], torch.eye(4), nb._valid_mask(
        ["a", "<1>", "<|endoftext|>", "b"]))
    _, ids = nb.nearest_rows(index, torch.eye(4), 4)
    assert set(ids.flatten().tolist()) == {0, 3} and index.size == 2


def test_norm_percentiles(bb):
    table = bb.encoders[0].table
    big = Concept("<big>", {"clip": table[100:101] * 50}, family=bb.family)
    small = Concept("<small>", {"clip": table[100:101] * 1e-3}, family=bb.family)
    assert nb.find_neighbors(bb, big, k=1).rows[0].percentile == 100.0
    assert nb.find_neighbors(bb, small, k=1).rows[0].percentile == 0.0
    stats = nb.find_neighbors(bb, "cat", k=1).vocab_norms["clip"]
    assert stats["median"] <= stats["p99"] <= stats["max"]


def test_per_vector_rows_and_mean(bb):
    from ticraft.analysis.neighbors import word_concept

    rows = [word_concept(bb, w).vectors["clip"] for w in ("cat", "dog", "toy")]
    c = Concept("<three>", {"clip": torch.cat(rows)}, family=bb.family)
    report = nb.find_neighbors(bb, c, k=2, per_vector=True)
    assert [r.label for r in report.rows] == ["mean", "vector 0", "vector 1", "vector 2"]
    assert [r.matches[0].token for r in report.rows[1:]] == ["cat", "dog", "toy"]
    assert len(nb.find_neighbors(bb, c, k=2, per_vector=False).rows) == 1


def test_nearest_library_concepts(bb):
    base = torch.randn(1, 32)
    q = Concept("<q>", {"clip": base}, family=bb.family)
    near = Concept("<near>", {"clip": base + 0.01}, family=bb.family)
    far = Concept("<far>", {"clip": -base}, family=bb.family)
    other_width = Concept("<wide>", {"clip": torch.randn(1, 64)}, family="custom")
    report = nb.find_neighbors(bb, q, k=1, library_concepts=[far, q, other_width, near], k_concepts=5)
    assert [m.token for m in report.concepts] == ["<near>", "<far>"]
    assert report.concepts[0].cosine > 0.99 and report.concepts[1].cosine < -0.99


def test_disk_cache_is_written_and_reused(bb, monkeypatch):
    index = nb.vocab_index(bb)
    path = nb._disk_path(index.fingerprint, index.key)
    assert path.is_file()
    nb.clear_memory_cache()
    monkeypatch.setattr(nb, "_index_from_table", lambda *a, **k: pytest.fail("the disk cache was not used"))
    again = nb.vocab_index(bb)
    assert torch.equal(again.unit, index.unit) and again.tokens == index.tokens
    monkeypatch.undo()
    path.write_bytes(b"not a safetensors file")  # a broken cache is rebuilt, never fatal
    nb.clear_memory_cache()
    assert torch.equal(nb.vocab_index(bb).unit, index.unit)


def test_sdxl_reports_both_encoders(tiny_sdxl_dir):
    from ticraft.models.load import load_backbone

    xl = load_backbone(str(tiny_sdxl_dir))
    report = nb.find_neighbors(xl, "dog", k=2)
    assert [r.key for r in report.rows] == ["clip_l", "clip_g"]
    assert all(r.matches[0].token == "dog" for r in report.rows)


def test_clear_errors(bb):
    with pytest.raises(TicraftError, match="metric"):
        nb.find_neighbors(bb, "cat", metric="manhattan")  # type: ignore[arg-type]
    wrong = Concept("<w>", {"clip": torch.randn(1, 768)}, family="sd1")
    with pytest.raises(TicraftError):
        nb.find_neighbors(bb, wrong)
