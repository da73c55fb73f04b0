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
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ticraft.library._common import LibraryError, atomic_write_bytes
from ticraft.library.entry import Entry

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

    def nearest(self, query: "Concept", k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` rows most cosine-similar to ``query``'s mean (its own token and other families skipped).

        One matrix-vector product over all rows: as fast for 10,000 concepts as for 10.
        """
        if query.dims != self.dims or not self.tokens or k <= 0:
            return []
        q = torch.cat([query.vectors[key].double().mean(0) for key in sorted(self.means)])
        rows = self.concat().double()
        sims = (rows @ q) / (rows.norm(dim=1) * q.norm()).clamp_min(1e-12)
        skip = torch.tensor(
            [
                t == query.token or bool(query.family and f and f != query.family)
                for t, f in zip(self.tokens, self.families, strict=False)
            ]
        )
        sims[skip] = float("-inf")
        top = torch.topk(sims, min(k, len(self.tokens)))
        return [
            (self.tokens[int(i)], float(s)) for s, i in zip(top.values, top.indices, strict=False) if s != float("-inf")
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


def _read_means(entry: Entry) -> dict[str, torch.Tensor]:
    from ticraft.library.canonical import read_canonical

    c = read_canonical(entry.embedding)
    return {k: v.float().mean(0) for k, v in c.vectors.items()}


def _load_disk(path, dims: dict[str, int]) -> dict[str, dict[str, torch.Tensor]]:
    """sha256 → {key: mean} from the on-disk cache (empty when absent or unreadable)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            if meta.get("format_id") != _FORMAT:
                return {}
            shas = json.loads(meta["sha256"])
            tensors = {k: f.get_tensor(k) for k in dims}
    except Exception:  # a damaged cache only costs a rebuild
        return {}
    if any(t.shape != (len(shas), dims[k]) for k, t in tensors.items()):
        return {}
    return {sha: {k: tensors[k][i] for k in dims} for i, sha in enumerate(shas)}


def library_matrix(
    lib: "Library", *, dims: dict[str, int] | None = None, family: str | None = None, tag: str | None = None
) -> ConceptMatrix:
    """See :meth:`Library.matrix`. ``dims=None`` picks the widths most entries have."""
    generation = lib.generation()
    everything = lib.entries()
    if dims is None:
        common = Counter(tuple(sorted(e.dims.items())) for e in everything).most_common(1)
        dims = dict(common[0][0]) if common else {}
    dims = {str(k): int(v) for k, v in dims.items()}
    rows = [e for e in everything if e.dims == dims]
    ckey = (tuple(sorted(dims.items())), generation)
    with lib._matrix_mutex:
        full = lib._matrix_cache.get(ckey[0])
        if full is None or full.generation != generation:
            full = _build(lib, rows, dims, generation)
            lib._matrix_cache[ckey[0]] = full
    if family is None and tag is None:
        return full
    wanted = {e.token for e in lib.search(tag=tag, family=family)}
    return full.subset([i for i, t in enumerate(full.tokens) if t in wanted])


def _build(lib: "Library", rows: list[Entry], dims: dict[str, int], generation: int) -> ConceptMatrix:
    path = lib.root / ".index" / f"vectors-{_dims_label(dims)}.safetensors"
    cached = _load_disk(path, dims) if rows else {}
    means: dict[str, list[torch.Tensor]] = {k: [] for k in dims}
    kept: list[Entry] = []
    changed = False
    for e in rows:
        vec = cached.get(e.sha256) if e.sha256 else None
        if vec is None:
            try:
                vec = _read_means(e)
            except LibraryError:
                continue  # a broken entry is reported by list/verify; it just is not on the map
            changed = True
        kept.append(e)
        for k in dims:
            means[k].append(vec[k])
    stacked = {k: torch.stack(v) if v else torch.zeros(0, dims[k]) for k, v in means.items()}
    shas = [e.sha256 for e in kept]
    if kept and (changed or set(shas) != set(cached)) and all(shas):
        from safetensors.torch import save

        meta = {"format_id": _FORMAT, "sha256": json.dumps(shas)}
        with contextlib.suppress(OSError):  # a read-only library just reads the files again next time
            path.parent.mkdir(exist_ok=True)
            atomic_write_bytes(path, save({k: v.contiguous() for k, v in stacked.items()}, metadata=meta))
    return ConceptMatrix([e.token for e in kept], [e.family for e in kept], shas, dims, stacked, generation)
