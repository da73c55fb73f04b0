"""All of a library's vectors as one matrix: nearest-concept search and maps without a file per concept.

:meth:`Library.matrix` returns a :class:`ConceptMatrix`: the mean vector of every entry with the
requested widths, one ``[N, D]`` float32 tensor per encoder. It is built once and kept

* in memory, per ``Library`` object, until the index's ``generation`` changes (any add, tag, rename,
  remove …), and
* on disk in ``.index/vectors-<widths>.safetensors``, keyed by each concept's content hash, so a new
  process reads one file and only the concepts added or changed since are opened one by one.

>>> m = lib.matrix(dims={"clip": 768})                        # doctest: +SKIP
>>> m.nearest(lib.get("<cat-toy>"), k=3)                      # doctest: +SKIP
[('<dog-toy>', 0.91), ('<cat-2>', 0.88), ('<kitten>', 0.85)]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ticraft.library import index as ix
from ticraft.library._common import EMBEDDING, LibraryError, atomic_write_bytes

if TYPE_CHECKING:  # pragma: no cover
    from ticraft.concept import Concept
    from ticraft.library.store import Library

_FORMAT = "ticraft-concept-matrix-1"


@dataclass(frozen=True)
class ConceptMatrix:
    """Mean vectors of many library concepts, row ``i`` belonging to ``tokens[i]``.

    Attributes:
        tokens, families, sha256: per row, from the index.
        dims: encoder key → width (the same for every row).
        means: encoder key → ``[N, D]`` float32 tensor of each concept's mean vector.
        generation: the index generation the matrix reflects.
    """

    tokens: list[str]
    families: list[str | None]
    sha256: list[str]
    dims: dict[str, int]
    means: dict[str, torch.Tensor]
    generation: int

    def __len__(self) -> int:
        return len(self.tokens)

    def concat(self) -> torch.Tensor:
        """``[N, sum D]``: every encoder's mean, in sorted key order (what :func:`ticraft.concept.cosine` compares)."""
        if not self.tokens:
            return torch.zeros(0, sum(self.dims.values()))
        return torch.cat([self.means[k] for k in sorted(self.means)], dim=1)

    def unit(self) -> torch.Tensor:
        """:meth:`concat` with every row scaled to length 1 (float32; computed once per matrix)."""
        cached = self.__dict__.get("_unit")
        if cached is None:
            rows = self.concat().float()
            cached = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
            object.__setattr__(self, "_unit", cached)  # frozen dataclass: a private cache, not a field
        return cached

    def nearest(self, query: "Concept", k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` rows most cosine-similar to ``query``'s mean (its own token and other families skipped).

        One matrix-vector product over all rows: as fast for 10,000 concepts as for 10.
        """
        if query.dims != self.dims or not self.tokens or k <= 0:
            return []
        q = torch.cat([query.vectors[key].double().mean(0) for key in sorted(self.means)])
        sims = (self.unit() @ (q / q.norm().clamp_min(1e-12)).float()).double()
        if query.family:
            other = [i for i, f in enumerate(self.families) if f and f != query.family]
            if other:
                sims[torch.tensor(other)] = float("-inf")
        with contextlib.suppress(ValueError):
            sims[self.tokens.index(query.token)] = float("-inf")
        top = torch.topk(sims, min(k, len(self.tokens)))
        return [
            (self.tokens[int(i)], float(s)) for s, i in zip(top.values, top.indices, strict=True) if s != float("-inf")
        ]

    def subset(self, keep: list[int]) -> "ConceptMatrix":
        """The rows ``keep`` (in that order)."""
        idx = torch.tensor(keep, dtype=torch.long)
        return ConceptMatrix(
            [self.tokens[i] for i in keep],
            [self.families[i] for i in keep],
            [self.sha256[i] for i in keep],
            dict(self.dims),
            {k: v[idx] if keep else v[:0] for k, v in self.means.items()},
            self.generation,
        )


def _dims_label(dims: dict[str, int]) -> str:
    text = "-".join(f"{k}{d}" for k, d in sorted(dims.items()))
    return text if len(text) <= 40 else hashlib.sha1(text.encode()).hexdigest()[:16]


def _read_means(path: Path) -> dict[str, torch.Tensor]:
    from ticraft.library.canonical import read_canonical

    c = read_canonical(path)
    return {k: v.float().mean(0) for k, v in c.vectors.items()}


def _load_disk(path: Path, dims: dict[str, int]) -> tuple[dict[str, int], dict[str, torch.Tensor]]:
    """``(sha256 → row, {key: [M, D] means})`` from the on-disk cache (empty when absent or unreadable)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            if meta.get("format_id") != _FORMAT:
                return {}, {}
            shas = json.loads(meta["sha256"])
            tensors = {k: f.get_tensor(k) for k in dims}
    except Exception:  # a damaged cache only costs a rebuild
        return {}, {}
    if any(t.shape != (len(shas), dims[k]) for k, t in tensors.items()):
        return {}, {}
    return {sha: i for i, sha in enumerate(shas)}, tensors


def library_matrix(
    lib: "Library", *, dims: dict[str, int] | None = None, family: str | None = None, tag: str | None = None
) -> ConceptMatrix:
    """See :meth:`Library.matrix`. ``dims=None`` picks the widths most entries have."""
    with lib._reading() as conn:
        generation = int(ix.get_state(conn, "generation") or 0)
        if dims is None:  # the widths most entries have (the same widths in any key order count as one)
            counts: dict[tuple[tuple[str, int], ...], int] = {}
            for text, n in conn.execute("SELECT dims, count(*) FROM concepts GROUP BY dims"):
                widths = tuple(sorted(json.loads(text).items()))
                counts[widths] = counts.get(widths, 0) + n
            dims = dict(max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]) if counts else {}
    dims = {str(k): int(v) for k, v in (dims or {}).items()}
    key = tuple(sorted(dims.items()))
    with lib._matrix_mutex:
        full = lib._matrix_cache.get(key)
        if full is None or full.generation != generation:
            with lib._reading() as conn:  # one lean query: no Entry objects, no file touched
                rows = [
                    r[:4]
                    for r in conn.execute(
                        "SELECT folder, token, family, sha256, dims FROM concepts ORDER BY sort_key, token"
                    )
                    if json.loads(r[4]) == dims  # dict equality: encoder keys may be stored in any order
                ]
            full = _build(lib, rows, dims, generation)
            lib._matrix_cache[key] = full
    if family is None and tag is None:
        return full
    wanted = {e.token for e in lib.search(tag=tag, family=family)}
    return full.subset([i for i, t in enumerate(full.tokens) if t in wanted])


def _build(
    lib: "Library", rows: list[tuple[str, str, str | None, str]], dims: dict[str, int], generation: int
) -> ConceptMatrix:
    """The matrix of ``rows`` (folder, token, family, sha256): cached means gathered in one step, the rest read."""
    path = lib.root / ".index" / f"vectors-{_dims_label(dims)}.safetensors"
    where, cached = _load_disk(path, dims) if rows else ({}, {})
    kept: list[tuple[str, str, str | None, str]] = []
    hit_pos, hit_rows, fresh_pos, fresh = [], [], [], []
    for folder, token, fam, sha in rows:
        if sha and sha in where:
            hit_pos.append(len(kept))
            hit_rows.append(where[sha])
        else:
            try:
                vec = _read_means(lib.root / folder / EMBEDDING)
            except LibraryError:
                continue  # a broken entry is reported by list/verify; it just is not on the map
            fresh_pos.append(len(kept))
            fresh.append(vec)
        kept.append((folder, token, fam, sha))
    stacked = {k: torch.zeros(len(kept), d) for k, d in dims.items()}
    for k in dims:
        if hit_pos:
            stacked[k][torch.tensor(hit_pos)] = cached[k].float()[torch.tensor(hit_rows)]
        if fresh_pos:
            stacked[k][torch.tensor(fresh_pos)] = torch.stack([v[k] for v in fresh])
    shas = [r[3] for r in kept]
    if kept and (fresh or len(where) != len(shas)) and all(shas):
        from safetensors.torch import save

        meta = {"format_id": _FORMAT, "sha256": json.dumps(shas)}
        with contextlib.suppress(OSError):  # a read-only library just reads the files again next time
            path.parent.mkdir(exist_ok=True)
            atomic_write_bytes(path, save({k: v.contiguous() for k, v in stacked.items()}, metadata=meta))
    return ConceptMatrix([r[1] for r in kept], [r[2] for r in kept], shas, dims, stacked, generation)
