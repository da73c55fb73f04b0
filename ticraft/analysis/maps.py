"""Maps of learned concepts among vocabulary tokens (UMAP or PCA), as a labelled PNG and coordinate files.

Points: a seeded sample of the vocabulary (``vocab=5000``) or all of it (``vocab="all"``), each concept's nearest
tokens (always included, so they can be highlighted), and each concept's mean vector. UMAP (umap-learn, cosine
metric, fixed ``random_state``) embeds them jointly; PCA (scikit-learn) is fitted on the vocabulary points and places
the concepts with the same projection. Both are deterministic for a seed, and results are cached on disk per model
fingerprint + method + seed + vocabulary size + concept contents, so redrawing a map is instant.

Outputs: :meth:`ConceptMap.save` writes ``map.png`` (matplotlib, Agg backend), ``map.json`` and ``map.csv`` (one
row per point: label, kind, x, y, token id, neighbouring concepts).

>>> m = build_map(bb, [concept], method="pca", vocab=500, seed=0)   # doctest: +SKIP
>>> m.save("map.png")                                                # doctest: +SKIP
{'png': PosixPath('map.png'), 'json': PosixPath('map.json'), 'csv': PosixPath('map.csv')}
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np
import torch

from ticraft.concept import Concept
from ticraft.errors import TicraftError

if TYPE_CHECKING:
    from ticraft.library.vectors import ConceptMatrix
    from ticraft.models.backbone import Backbone

Method = Literal["umap", "pca"]
METHODS: tuple[str, ...] = ("umap", "pca")
MAP_FORMAT = 1  # bump when the cached JSON layout changes


class MapError(TicraftError):
    """A map could not be built (unknown method, too few points, missing optional dependency)."""


@dataclass(frozen=True)
class MapPoint:
    """One point: a vocabulary token (``vocab``), a concept's neighbour token (``neighbor``) or a ``concept``."""

    label: str
    kind: Literal["vocab", "neighbor", "concept"]
    x: float
    y: float
    token_id: int | None = None
    near: tuple[str, ...] = ()  # for neighbours: the concepts they neighbour


@dataclass
class ConceptMap:
    """A 2-D map: the points and how they were made."""

    method: str
    seed: int
    model: str  # the backbone fingerprint
    key: str  # encoder key of the table used
    vocab: int | str
    points: list[MapPoint] = field(default_factory=list)
    params: dict[str, object] = field(default_factory=dict)

    # ---------------------------------------------------------------- views
    def of_kind(self, kind: str) -> list[MapPoint]:
        """Points of one kind (``vocab``, ``neighbor``, ``concept``)."""
        return [p for p in self.points if p.kind == kind]

    def coordinates(self) -> np.ndarray:
        """``[N, 2]`` array of every point's coordinates, in point order."""
        return np.array([[p.x, p.y] for p in self.points], dtype=np.float64).reshape(-1, 2)

    # ---------------------------------------------------------- serialising
    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["format"] = MAP_FORMAT
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ConceptMap":
        points = [MapPoint(label=p["label"], kind=p["kind"], x=float(p["x"]), y=float(p["y"]),
                           token_id=p.get("token_id"), near=tuple(p.get("near", ()))) for p in d["points"]]
        return cls(method=d["method"], seed=int(d["seed"]), model=d["model"], key=d["key"], vocab=d["vocab"],
                   points=points, params=dict(d.get("params", {})))

    def to_json(self, path: str | Path) -> Path:
        """Write the map as JSON (floats round-trip exactly)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per point: ``label,kind,x,y,token_id,near`` (``near`` joined by ``;``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["label", "kind", "x", "y", "token_id", "near"])
        for p in self.points:
            w.writerow([p.label, p.kind, repr(p.x), repr(p.y), "" if p.token_id is None else p.token_id,
                        ";".join(p.near)])
        path.write_text(buf.getvalue(), encoding="utf-8")
        return path

    def plot(self, path: str | Path, *, title: str | None = None, label_vocab: int = 150) -> Path:
        """Draw the map to a PNG: vocabulary grey, neighbours highlighted and labelled, concepts as labelled stars.

        Vocabulary tokens are labelled too when there are at most ``label_vocab`` of them.
        """
        from matplotlib.figure import Figure  # no pyplot: no backend switch, no global state, safe in threads

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig = Figure(figsize=(10, 10), dpi=100)
        ax = fig.add_subplot(1, 1, 1)
        vocab = self.of_kind("vocab")
        neigh = self.of_kind("neighbor")
        concepts = self.of_kind("concept")
        if vocab:
            ax.scatter([p.x for p in vocab], [p.y for p in vocab], s=6, c="#9a9a9a", alpha=0.5, linewidths=0,
                       label=f"vocabulary ({len(vocab)})")
            if len(vocab) <= label_vocab:
                for p in vocab:
                    ax.annotate(p.label, (p.x, p.y), fontsize=6, color="#707070", xytext=(2, 2),
                                textcoords="offset points")
        by_token = {p.label: p for p in concepts}
        for p in neigh:  # thin lines from each concept to its neighbours
            for c in p.near:
                if c in by_token:
                    ax.plot([by_token[c].x, p.x], [by_token[c].y, p.y], color="#f0a040", linewidth=0.6, alpha=0.6)
        if neigh:
            ax.scatter([p.x for p in neigh], [p.y for p in neigh], s=28, c="#f08c00", edgecolors="white",
                       linewidths=0.5, label="nearest tokens", zorder=3)
            for p in neigh:
                ax.annotate(p.label, (p.x, p.y), fontsize=8, color="#a05a00", xytext=(3, 3),
                            textcoords="offset points", zorder=4)
        if concepts:
            ax.scatter([p.x for p in concepts], [p.y for p in concepts], s=180, marker="*", c="#d62728",
                       edgecolors="black", linewidths=0.6, label="concepts", zorder=5)
            for p in concepts:
                ax.annotate(p.label, (p.x, p.y), fontsize=10, fontweight="bold", color="#8b0000", xytext=(6, 6),
                            textcoords="offset points", zorder=6)
        ax.set_title(title or f"{self.method.upper()} map · {self.key} · vocab {self.vocab} · seed {self.seed}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png", metadata={"Software": None})  # no version string: same bytes everywhere
        return path

    def save(self, png: str | Path, *, title: str | None = None) -> dict[str, Path]:
        """Write ``png`` and, beside it, the coordinates as ``.json`` and ``.csv``; return the three paths."""
        png = Path(png)
        if png.suffix.lower() != ".png":
            raise MapError(f"the map is written as PNG: use a .png name, not {png.name}")
        return {"png": self.plot(png, title=title), "json": self.to_json(png.with_suffix(".json")),
                "csv": self.to_csv(png.with_suffix(".csv"))}


# ------------------------------------------------------------------------------------------------ building
def sample_vocab(valid: torch.Tensor, vocab: int | str, seed: int) -> np.ndarray:
    """Sorted row ids of a seeded sample of ``vocab`` valid rows (``"all"``, or more than there are, keeps all).

    >>> ok = torch.ones(10, dtype=torch.bool)
    >>> sample_vocab(ok, 3, seed=0).tolist() == sample_vocab(ok, 3, seed=0).tolist()
    True
    """
    ids = np.flatnonzero(valid.numpy())
    n = _vocab_count(vocab)
    if n is None or n >= len(ids):
        return ids
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(ids, size=n, replace=False))


def _vocab_count(vocab: int | str) -> int | None:
    if isinstance(vocab, str):
        if vocab.strip().lower() == "all":
            return None
        try:
            vocab = int(vocab)
        except ValueError:
            raise MapError(f"--vocab takes a number of tokens or 'all', not {vocab!r}") from None
    if vocab < 0:
        raise MapError(f"--vocab (the vocabulary sample size) must be 0 or more, not {vocab}")
    return int(vocab)


def _cache_key(parts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def build_map(
    backbone: "Backbone",
    concepts: "Sequence[Concept] | ConceptMatrix",
    *,
    method: Method = "umap",
    vocab: int | str = 5000,
    seed: int = 0,
    key: str | None = None,
    neighbors: int = 5,
    umap_neighbors: int = 15,
    min_dist: float = 0.1,
    cache: bool = True,
) -> ConceptMap:
    """Embed ``concepts`` (their mean vectors) among vocabulary tokens in 2-D.

    Args:
        backbone: the model whose token table is mapped.
        concepts: concepts to place (must fit the model), or a library's
            :class:`~ticraft.library.vectors.ConceptMatrix` (``lib.matrix(dims=backbone.dims)``): its mean
            vectors are used as they are, so 10,000 concepts need no file read each.
        method: ``umap`` (cosine metric) or ``pca``.
        vocab: number of vocabulary tokens to sample (seeded), or ``"all"``.
        seed: seeds the sample and the embedding; the same seed gives the same map.
        key: encoder table to use (default the first: ``clip`` or ``clip_l``).
        neighbors: nearest tokens per concept to include and highlight.
        umap_neighbors, min_dist: UMAP's ``n_neighbors`` and ``min_dist``.
        cache: read/write the on-disk cache.
    """
    from ticraft.analysis.neighbors import nearest_rows, vocab_index

    if method not in METHODS:
        raise MapError(f"unknown map method {method!r}: use umap or pca")
    given: Any = concepts  # a list of Concepts or a ConceptMatrix (told apart by its "means")
    if hasattr(given, "means"):  # a ConceptMatrix: tokens, hashes and mean vectors without Concept objects
        if len(given) and given.dims != backbone.dims:
            raise MapError(f"these concepts have widths {given.dims}; the model has {backbone.dims}")
        rows = list(zip(given.tokens, given.sha256, strict=True))
    else:
        for c in given:
            backbone.check_concept(c)
        rows = [(c.token, c.sha256()) for c in given]
    if len({t for t, _ in rows}) != len(rows):
        raise MapError("the same concept token appears twice")
    index = vocab_index(backbone, key)
    params: dict[str, object] = {"neighbors": neighbors}
    if method == "umap":
        params.update(umap_neighbors=umap_neighbors, min_dist=min_dist)
    ckey = _cache_key({"format": MAP_FORMAT, "model": index.fingerprint, "key": index.key, "method": method,
                       "seed": seed, "vocab": str(vocab), "params": params,
                       "concepts": [list(r) for r in rows]})
    path = _cache_path(ckey)
    if cache and path.is_file():
        try:
            return ConceptMap.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a broken cache entry is rebuilt

    sample = sample_vocab(index.valid, vocab, seed)
    means = given.means[index.key].float() if hasattr(given, "means") and len(rows) else \
        torch.stack([c.vectors[index.key].float().mean(0) for c in given]) if rows \
        else torch.zeros(0, index.table.shape[1])
    near: dict[int, list[str]] = {}
    if rows and neighbors > 0:
        _, ids = nearest_rows(index, means, neighbors, "cosine")
        for (token, _), row in zip(rows, ids.tolist(), strict=True):
            for j in row:
                near.setdefault(int(j), []).append(token)
    vocab_ids = np.array(sorted(set(sample.tolist()) | set(near)), dtype=np.int64)
    x_vocab = index.table[torch.from_numpy(vocab_ids)].numpy().astype(np.float32)
    x_concepts = means.numpy().astype(np.float32)
    coords = _embed(method, x_vocab, x_concepts, seed=seed, umap_neighbors=umap_neighbors, min_dist=min_dist)

    points = []
    for i, tid in enumerate(vocab_ids.tolist()):
        points.append(MapPoint(index.tokens[tid], "neighbor" if tid in near else "vocab", float(coords[i, 0]),
                               float(coords[i, 1]), int(tid), tuple(near.get(tid, ()))))
    for j, (token, _) in enumerate(rows):
        xy = coords[len(vocab_ids) + j]
        points.append(MapPoint(token, "concept", float(xy[0]), float(xy[1])))
    result = ConceptMap(method=method, seed=seed, model=index.fingerprint, key=index.key,
                        vocab=vocab if isinstance(vocab, int) else str(vocab), points=points, params=params)
    if cache:
        from ticraft.analysis.cache import atomic_write_bytes

        try:
            atomic_write_bytes(path, json.dumps(result.to_dict()).encode())
        except OSError:
            pass  # a read-only cache only costs time
    # what the caller gets is exactly what a later cache hit returns (JSON round-trips floats exactly)
    return ConceptMap.from_dict(json.loads(json.dumps(result.to_dict())))


def _cache_path(ckey: str) -> Path:
    from ticraft.analysis.cache import cache_dir

    return cache_dir("maps", f"{ckey}.json")


def _embed(method: str, x_vocab: np.ndarray, x_concepts: np.ndarray, *, seed: int, umap_neighbors: int,
           min_dist: float) -> np.ndarray:
    """2-D coordinates of ``[x_vocab; x_concepts]`` (float64 ``[N, 2]``)."""
    n = len(x_vocab) + len(x_concepts)
    if method == "pca":
        try:
            from sklearn.decomposition import PCA
        except ImportError:
            raise MapError("PCA maps need scikit-learn: pip install 'ticraft[maps]'") from None
        if len(x_vocab) < 2:
            raise MapError("a PCA map needs at least 2 vocabulary tokens")
        # fitted on the vocabulary only: a few far-off concepts must not tilt the axes of the whole map
        pca = PCA(n_components=2, random_state=seed).fit(x_vocab.astype(np.float64))
        out = pca.transform(np.concatenate([x_vocab, x_concepts]).astype(np.float64))
        # fix PCA's sign ambiguity: the largest-|loading| of each axis positive (same map on any BLAS)
        signs = np.sign(pca.components_[np.arange(2), np.abs(pca.components_).argmax(axis=1)])
        return out * np.where(signs == 0, 1.0, signs)
    try:
        import umap  # noqa: F401  (umap-learn)
    except ImportError:
        raise MapError("UMAP maps need umap-learn: pip install 'ticraft[maps]' (or use --method pca)") from None
    if n < 5:
        raise MapError(f"a UMAP map needs at least 5 points, got {n}: sample more vocabulary or use --method pca")
    import warnings

    from umap import UMAP

    reducer = UMAP(n_components=2, n_neighbors=max(2, min(umap_neighbors, n - 1)), min_dist=min_dist,
                   metric="cosine", random_state=seed, init="spectral" if n > 16 else "random", n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that random_state disables parallelism: that is the point
        out = reducer.fit_transform(np.concatenate([x_vocab, x_concepts]).astype(np.float32))
    return np.asarray(out, dtype=np.float64)


__all__ = ["ConceptMap", "METHODS", "MapError", "MapPoint", "build_map", "sample_vocab"]
