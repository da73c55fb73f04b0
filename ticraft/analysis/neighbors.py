"""Nearest vocabulary tokens (and library concepts) of learned vectors.

A learned vector is read by finding the real tokens it sits closest to. The lookup is one matrix product of the
query vectors against the model's token table (``[M, D] @ [D, V]``) followed by ``topk``; the normalised table is
built once per model (keyed by :meth:`Backbone.fingerprint`) and kept in memory and on disk under the cache dir.

Each vector's L2 norm is placed in the vocabulary's norm distribution (a percentile): learned vectors often sit far
off the word manifold (norms above every real token's), which explains concepts that overpower a prompt.

>>> bb = load_backbone("toy")                                   # doctest: +SKIP
>>> report = find_neighbors(bb, "circle", k=3)                   # doctest: +SKIP
>>> report.rows[0].matches[0].token                             # doctest: +SKIP
'circle'
"""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Iterable, Literal

import torch

from ticraft.concept import Concept, cosine
from ticraft.errors import TicraftError

if TYPE_CHECKING:
    from ticraft.library.vectors import ConceptMatrix
    from ticraft.models.backbone import Backbone, TextEncoder

Metric = Literal["cosine", "l2"]
METRICS: tuple[str, ...] = ("cosine", "l2")

# Tokens that are markup, not words: never offered as neighbours.
SPECIAL_TOKENS = frozenset({"<|startoftext|>", "<|endoftext|>"})


class NeighborError(TicraftError):
    """A neighbour query that cannot be answered (bad metric, mismatched model, empty vocabulary)."""


# --------------------------------------------------------------------------------------------- the vocab index
@dataclass(frozen=True)
class VocabIndex:
    """One encoder's token table prepared for nearest-neighbour queries.

    Attributes:
        key: encoder key (``clip``, ``clip_l``, ``clip_g``).
        fingerprint: the model fingerprint the index was built from.
        tokens: readable token strings in row order.
        table: the frozen table ``[V, D]`` (float32, CPU).
        unit: rows divided by their norms (for cosine).
        sq_norms: squared row norms ``[V]`` (for L2 through the same matmul).
        valid: rows that are real vocabulary words (special tokens and rows the tokenizer cannot produce, such as
            the toy model's blanked hidden words, are ``False`` and never returned).
        sorted_norms: ascending norms of the valid rows (for percentiles).
    """

    key: str
    fingerprint: str
    tokens: list[str]
    table: torch.Tensor
    unit: torch.Tensor
    sq_norms: torch.Tensor
    valid: torch.Tensor
    sorted_norms: torch.Tensor

    @property
    def size(self) -> int:
        """Number of valid vocabulary rows."""
        return int(self.valid.sum())

    def percentile(self, norms: torch.Tensor) -> torch.Tensor:
        """Percent of vocabulary rows whose norm is ≤ each given norm (0–100).

        >>> idx = _index_from_table("k", "fp", ["a", "b", "c", "d"], torch.eye(4) * torch.arange(1., 5.)[:, None])
        >>> idx.percentile(torch.tensor([0.5, 2.0, 9.0])).tolist()
        [0.0, 50.0, 100.0]
        """
        pos = torch.searchsorted(self.sorted_norms, norms.float().contiguous(), right=True)
        return pos.double() * 100.0 / max(1, self.sorted_norms.numel())


_MEMORY: dict[tuple[str, str], VocabIndex] = {}


def _valid_mask(tokens: list[str]) -> torch.Tensor:
    # token_strings() names rows the tokenizer cannot produce "<id>": those are not words.
    return torch.tensor(
        [t not in SPECIAL_TOKENS and not (t.startswith("<") and t[1:-1].isdigit() and t.endswith(">")) for t in tokens],
        dtype=torch.bool,
    )


def _index_from_table(key: str, fingerprint: str, tokens: list[str], table: torch.Tensor,
                      valid: torch.Tensor | None = None) -> VocabIndex:
    """Build an index from a raw table (used by :func:`vocab_index` and by tests/benchmarks)."""
    t = table.detach().to("cpu", torch.float32).contiguous()
    norms = t.norm(dim=1)
    unit = t / norms.clamp_min(1e-12)[:, None]
    ok = valid if valid is not None else torch.ones(t.shape[0], dtype=torch.bool)
    if not bool(ok.any()):
        raise NeighborError(f"the {key} vocabulary has no usable tokens")
    return VocabIndex(key=key, fingerprint=fingerprint, tokens=tokens, table=t, unit=unit, sq_norms=norms.square(),
                      valid=ok, sorted_norms=norms[ok].sort().values.contiguous())


def _disk_path(fingerprint: str, key: str):
    from ticraft.analysis.cache import cache_dir

    return cache_dir("neighbors", f"{fingerprint}-{key}.safetensors")


def vocab_index(backbone: "Backbone", key: str | None = None, *, disk: bool = True) -> VocabIndex:
    """The cached :class:`VocabIndex` of one encoder (first encoder when ``key`` is ``None``).

    Built once per model fingerprint; later calls return the in-memory copy, and a new process reads the
    normalised table back from the disk cache (safetensors, never pickle) instead of recomputing it.
    """
    enc = backbone.encoders[0] if key is None else backbone.encoder(key)
    fp = _fingerprint(backbone)
    hit = _MEMORY.get((fp, enc.key))
    if hit is not None:
        return hit
    tokens = enc.token_strings()
    valid = _valid_mask(tokens)
    index = _load_disk(fp, enc, tokens, valid) if disk else None
    if index is None:
        index = _index_from_table(enc.key, fp, tokens, enc.table, valid)
        if disk:
            _save_disk(index)
    _MEMORY[(fp, enc.key)] = index
    return index


_FINGERPRINTS: dict[tuple[int, ...], tuple[list[weakref.ref], tuple[int, ...], str]] = {}


def _fingerprint(backbone: "Backbone") -> str:
    """``backbone.fingerprint()``, remembered while the very same, unmodified tables are alive.

    The fingerprint sums every table (as costly as normalising it); repeated queries should cost one matmul.
    """
    tables = [e.table for e in backbone.encoders]
    key = tuple(id(t) for t in tables)
    versions = tuple(t._version for t in tables)
    hit = _FINGERPRINTS.get(key)
    if hit is not None and all(r() is t for r, t in zip(hit[0], tables, strict=False)) and hit[1] == versions:
        return hit[2]
    fp = backbone.fingerprint()
    _FINGERPRINTS[key] = ([weakref.ref(t) for t in tables], versions, fp)
    return fp


def _save_disk(index: VocabIndex) -> None:
    from safetensors.torch import save

    from ticraft.analysis.cache import atomic_write_bytes

    try:
        atomic_write_bytes(_disk_path(index.fingerprint, index.key), save({"unit": index.unit}))
    except OSError:
        pass  # a read-only cache only costs speed


def _load_disk(fp: str, enc: "TextEncoder", tokens: list[str], valid: torch.Tensor) -> VocabIndex | None:
    path = _disk_path(fp, enc.key)
    if not path.is_file():
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        unit = load_file(str(path))["unit"]
    except (OSError, KeyError, SafetensorError):
        return None  # a broken cache file is rebuilt, never fatal
    t = enc.table.detach().to("cpu", torch.float32).contiguous()
    if unit.shape != t.shape:
        return None
    norms = t.norm(dim=1)
    return VocabIndex(key=enc.key, fingerprint=fp, tokens=tokens, table=t, unit=unit, sq_norms=norms.square(),
                      valid=valid, sorted_norms=norms[valid].sort().values.contiguous())


def clear_memory_cache() -> None:
    """Forget the in-memory indices and fingerprints (the disk cache stays)."""
    _MEMORY.clear()
    _FINGERPRINTS.clear()


# ------------------------------------------------------------------------------------------------- the lookup
def nearest_rows(index: VocabIndex, queries: torch.Tensor, k: int, metric: Metric = "cosine"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and row ids ``[M, k]`` of the k nearest valid rows to each query ``[M, D]`` (one matmul).

    ``cosine`` scores are similarities (higher is nearer); ``l2`` scores are Euclidean distances (lower is nearer),
    from ``|t|² − 2 t·q + |q|²`` so that L2 costs the same single product.
    """
    if metric not in METRICS:
        raise NeighborError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    q = queries.detach().to("cpu", torch.float32)
    if q.ndim == 1:
        q = q[None]
    if q.shape[1] != index.table.shape[1]:
        raise NeighborError(f"query vectors are {q.shape[1]}-d but the {index.key} table is {index.table.shape[1]}-d")
    k = max(1, min(int(k), index.size))
    if metric == "cosine":
        qn = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
        scores = qn @ index.unit.T
        scores[:, ~index.valid] = float("-inf")
        top = scores.topk(k, dim=1)
        return top.values, top.indices
    dots = q @ index.table.T
    d2 = (index.sq_norms[None, :] - 2.0 * dots + q.square().sum(dim=1, keepdim=True)).clamp_min(0.0)
    d2[:, ~index.valid] = float("inf")
    top = d2.topk(k, dim=1, largest=False)
    return top.values.sqrt(), top.indices


@dataclass(frozen=True)
class TokenMatch:
    """One neighbouring vocabulary token."""

    token: str
    id: int
    score: float


@dataclass(frozen=True)
class VectorNeighbors:
    """The neighbours of one vector (``label`` is ``"vector i"`` or ``"mean"``) in one encoder's table."""

    label: str
    key: str
    norm: float
    percentile: float
    matches: list[TokenMatch]


@dataclass(frozen=True)
class ConceptMatch:
    """A library concept near the query (cosine of the mean vectors, all encoders concatenated)."""

    token: str
    cosine: float


@dataclass
class NeighborReport:
    """Everything ``ticraft neighbors`` shows."""

    query: str
    metric: str
    k: int
    rows: list[VectorNeighbors]
    concepts: list[ConceptMatch] = field(default_factory=list)
    vocab_norms: dict[str, dict[str, float]] = field(default_factory=dict)  # key → median/p99/max of the table

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def word_concept(backbone: "Backbone", word: str, *, mode: Literal["mean", "vectors"] = "mean") -> Concept:
    """A plain word as a concept: its token rows per encoder, averaged (``mean``) or kept (``vectors``).

    The ``mean`` of a one-token word is its row exactly.
    """
    if mode not in ("mean", "vectors"):
        raise NeighborError(f"unknown word mode {mode!r}: use 'mean' or 'vectors'")
    rows = backbone.token_vector(word)
    c = Concept(token=word, vectors={k: v.float() for k, v in rows.items()}, family=backbone.family,
                meta={"word": word})
    return c.mean_vector() if mode == "mean" and c.num_vectors > 1 else c


def nearest_concepts(query: Concept, candidates: "Iterable[Concept] | ConceptMatrix", k: int = 5) -> list[ConceptMatch]:
    """Library concepts most similar to ``query`` (same encoders and widths; the query's own token skipped).

    ``candidates`` may be a library's :class:`~ticraft.library.vectors.ConceptMatrix` (``lib.matrix(...)``):
    then the ranking is one matrix product over all of them instead of one comparison per concept.
    """
    if hasattr(candidates, "nearest"):
        return [ConceptMatch(t, s) for t, s in candidates.nearest(query, k)]
    out = []
    for c in candidates:
        if c.token == query.token or c.dims != query.dims:
            continue
        if query.family and c.family and query.family != c.family:
            continue
        out.append(ConceptMatch(c.token, cosine(query, c)))
    out.sort(key=lambda m: -m.cosine)
    return out[: max(0, k)]


def find_neighbors(
    backbone: "Backbone",
    query: Concept | str,
    *,
    k: int = 20,
    metric: Metric = "cosine",
    per_vector: bool = True,
    library_concepts: "Iterable[Concept] | ConceptMatrix" = (),
    k_concepts: int = 5,
    disk_cache: bool = True,
) -> NeighborReport:
    """Nearest vocabulary tokens of each vector of ``query`` and of their mean, per encoder.

    Args:
        backbone: the model whose vocabulary is searched.
        query: a concept, or a plain word (its token rows are the vectors).
        k: neighbours per vector.
        metric: ``cosine`` (similarity, higher is nearer) or ``l2`` (distance, lower is nearer).
        per_vector: also report each vector of a multi-vector query (the mean is always reported; a one-vector
            query has a single row, its mean).
        library_concepts: concepts to rank against the query (``ticraft neighbors`` passes the library's
            :meth:`~ticraft.library.Library.matrix`).
        k_concepts: how many library concepts to keep.

    Example:
        >>> report = find_neighbors(bb, "cat", k=3)             # doctest: +SKIP
        >>> [m.token for m in report.rows[0].matches]           # doctest: +SKIP
        ['cat', 'dog', 'toy']
    """
    if metric not in METRICS:
        raise NeighborError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    concept = word_concept(backbone, query, mode="vectors") if isinstance(query, str) else query
    backbone.check_concept(concept)
    rows: list[VectorNeighbors] = []
    stats: dict[str, dict[str, float]] = {}
    for enc in backbone.encoders:
        index = vocab_index(backbone, enc.key, disk=disk_cache)
        vecs = concept.vectors[enc.key].float()
        labels = ["mean"]
        queries = [vecs.mean(dim=0)]
        if per_vector and vecs.shape[0] > 1:
            n = concept.num_vectors  # a per-layer (XTI) concept: rows are layer-major, labelled per layer
            labels += ([f"layer {i // n}" + (f" v{i % n}" if n > 1 else "") for i in range(vecs.shape[0])]
                       if concept.layers > 1 else [f"vector {i}" for i in range(vecs.shape[0])])
            queries += list(vecs)
        q = torch.stack(queries)
        scores, ids = nearest_rows(index, q, k, metric)  # one matmul for all of this encoder's queries
        norms = q.norm(dim=1)
        pct = index.percentile(norms)
        for i, label in enumerate(labels):
            matches = [TokenMatch(index.tokens[int(j)], int(j), float(s))
                       for s, j in zip(scores[i], ids[i], strict=True)]
            rows.append(VectorNeighbors(label, enc.key, float(norms[i]), float(pct[i]), matches))
        sn = index.sorted_norms
        stats[enc.key] = {"median": float(sn[sn.numel() // 2]), "p99": float(sn[int(0.99 * (sn.numel() - 1))]),
                          "max": float(sn[-1])}
    return NeighborReport(
        query=concept.token, metric=metric, k=k, rows=rows,
        concepts=nearest_concepts(concept, library_concepts, k_concepts), vocab_norms=stats,
    )


__all__ = [
    "ConceptMatch",
    "METRICS",
    "NeighborError",
    "NeighborReport",
    "TokenMatch",
    "VectorNeighbors",
    "VocabIndex",
    "clear_memory_cache",
    "find_neighbors",
    "nearest_concepts",
    "nearest_rows",
    "vocab_index",
    "word_concept",
]
