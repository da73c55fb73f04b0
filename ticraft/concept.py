"""A learned concept: N vectors per text encoder, bound to a placeholder token, plus metadata.

Concepts are plain data. They know nothing about models beyond the *family* name and the
vector widths, so this module imports torch tensors only (no diffusers/transformers) and is
cheap to import when listing a library.

Encoder keys
------------
Single-encoder families (``sd1``, ``sd2``, ``toy``) store their vectors under ``"clip"``.
SDXL stores ``"clip_l"`` (768-d) and ``"clip_g"`` (1280-d), the names kohya and ComfyUI use.

Arithmetic works per encoder, element-wise, on vectors of equal shape::

    >>> import torch
    >>> a = Concept("<a>", {"clip": torch.ones(1, 4)}, family="toy")
    >>> b = Concept("<b>", {"clip": torch.zeros(1, 4)}, family="toy")
    >>> (0.5 * a + b).vectors["clip"].tolist()
    [[0.5, 0.5, 0.5, 0.5]]
    >>> slerp(a, b, 0.0).vectors["clip"].tolist() == a.vectors["clip"].tolist()
    True

Vector counts broadcast as numpy's size-1 axes do: a concept with exactly one vector (a plain word) meets one with
N by repeating its vector N times (per layer for a per-layer concept), which is ``match_count(a, N, "pad")``; other
unequal counts (2 and 3) are a :class:`VectorCountError`::

    >>> c3 = Concept("<c3>", {"clip": torch.zeros(3, 4)}, family="toy")
    >>> (c3 + a).num_vectors, torch.equal((c3 + a).vectors["clip"], match_count(a, 3).vectors["clip"])
    (3, True)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from ticraft.concept_checks import (  # re-exported: errors and checks on vectors live in their own module
    COUNT_FIX_PYTHON,
    ConceptError,
    VectorCountError,
    _layers_text,
    _slerp_rows,
    check_finite,
    check_vector_count,
    count_error,
    vectors_text,
)
from ticraft.concept_spec import (  # re-exported: ticraft.concept stays the place to import them from
    FAMILY_ENCODERS,
    LAYOUT_META,
    MAX_VECTORS,
    SINGLE_KEY,
    _key_rank,
    guess_family,
)
from ticraft.concept_spec import KEY_ORDER as KEY_ORDER  # kept importable from here too


@dataclass
class Concept:
    """Learned vectors for one placeholder token.

    Args:
        token: the placeholder, e.g. ``"<cat-toy>"``.
        vectors: encoder key → float tensor of shape ``[N, D]`` (N equal for every encoder).
        family: ``"sd1"``, ``"sd2"``, ``"sdxl"``, ``"toy"`` or ``None`` when unknown.
        meta: free metadata (initializer, steps, source file, image hashes, loss curve, …);
            JSON-serialisable values only.
    """

    token: str
    vectors: dict[str, torch.Tensor]
    family: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token.strip():
            raise ConceptError("a concept needs a non-empty token string")
        if not self.vectors:
            raise ConceptError(f"concept {self.token!r} has no vectors")
        clean: dict[str, torch.Tensor] = {}
        counts = set()
        for key, value in self.vectors.items():
            if not isinstance(value, torch.Tensor):
                raise ConceptError(f"concept {self.token!r}: vectors[{key!r}] is not a tensor")
            t = value.detach()
            if t.ndim == 1:
                t = t.unsqueeze(0)
            if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
                raise ConceptError(
                    f"concept {self.token!r}: vectors[{key!r}] must have shape [N, D], got {tuple(value.shape)}"
                )
            if not t.is_floating_point():
                raise ConceptError(f"concept {self.token!r}: vectors[{key!r}] must be floating point")
            if t.shape[0] > MAX_VECTORS * self.layers:  # per-layer (XTI) concepts: MAX_VECTORS per layer
                raise ConceptError(
                    f"concept {self.token!r} has {t.shape[0]} vectors; the limit is {MAX_VECTORS} "
                    f"(a prompt holds at most {MAX_VECTORS} tokens)"
                )
            check_finite(t, f"concept {self.token!r}: vectors[{key!r}]")
            counts.add(t.shape[0])
            clean[key] = t
        if self.layers > 1 and any(c % self.layers for c in counts):
            raise ConceptError(f"concept {self.token!r}: {sorted(counts)} rows do not split into {self.layers} layers")
        if len(counts) != 1:
            shapes = {k: tuple(v.shape) for k, v in clean.items()}
            raise ConceptError(f"concept {self.token!r}: encoders disagree on the vector count: {shapes}")
        # One key order whatever the source (a file, an expression, a model): encoders in pipeline order.
        # Code that serialises `dims` (the library index's JSON) then sees equal concepts as equal.
        self.vectors = {k: clean[k] for k in sorted(clean, key=_key_rank)}
        if self.family is None:
            self.family = guess_family(self.dims)
        elif self.family not in FAMILY_ENCODERS:
            raise ConceptError(f"unknown family {self.family!r}; known: {', '.join(FAMILY_ENCODERS)}")

    # ------------------------------------------------------------------ shape
    @property
    def num_vectors(self) -> int:
        """N, the number of vectors per encoder (per layer for a per-layer concept)."""
        return next(iter(self.vectors.values())).shape[0] // self.layers

    @property
    def layers(self) -> int:
        """L, cross-attention layers with their own vectors (``meta["xti_layers"]``; 1 for ordinary concepts).

        A per-layer (P+/XTI, :mod:`ticraft.models.layers`) concept stores ``[L·N, D]`` rows, layer-major.
        """
        return int(self.meta.get("xti_layers", 1) or 1)

    def _per_layer(self, fn: Any) -> dict[str, torch.Tensor]:
        """``fn`` applied to each encoder's ``[L, N, D]`` view, flattened back to rows."""
        out = {}
        for k, v in self.vectors.items():
            r = fn(v.reshape(self.layers, -1, v.shape[1]))
            out[k] = r.reshape(-1, v.shape[1])
        return out

    @property
    def dims(self) -> dict[str, int]:
        """Encoder key → vector width D."""
        return {k: int(v.shape[1]) for k, v in self.vectors.items()}

    @property
    def is_sdxl(self) -> bool:
        return set(self.vectors) == {"clip_l", "clip_g"}

    def norms(self) -> dict[str, list[float]]:
        """Encoder key → L2 norm of each vector."""
        return {k: v.float().norm(dim=1).tolist() for k, v in self.vectors.items()}

    def sha256(self) -> str:
        """Content hash of the vectors (keys, shapes, dtype and bytes), stable across formats."""
        h = hashlib.sha256()
        for key in sorted(self.vectors):
            t = self.vectors[key].contiguous().cpu()
            h.update(key.encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(str(t.dtype).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.hexdigest()

    # ------------------------------------------------------------ derivation
    def replace(self, *, token: str | None = None, vectors: dict[str, torch.Tensor] | None = None,
                meta: dict[str, Any] | None = None) -> "Concept":
        """A copy with some fields replaced (metadata is copied, not shared)."""
        return Concept(
            token=token if token is not None else self.token,
            vectors=vectors if vectors is not None else {k: v.clone() for k, v in self.vectors.items()},
            family=self.family,
            meta=dict(meta if meta is not None else self.meta),
        )

    def _derived(self, vectors: dict[str, torch.Tensor], op: str) -> "Concept":
        # the layout (method, layer count, norm) travels with derived concepts; other metadata does not
        keep = layout_meta(self)
        return Concept(token=self.token, vectors=vectors, family=self.family, meta={**keep, "derived": op})

    def check_compatible(self, other: "Concept", *, same_count: bool = True) -> None:
        """Raise :class:`ConceptError` unless ``other`` has the same family, encoders, widths (and count)."""
        if self.family and other.family and self.family != other.family:
            raise ConceptError(
                f"cannot combine {self.token!r} ({self.family}) with {other.token!r} ({other.family}): "
                "different model families"
            )
        if self.dims != other.dims:
            raise ConceptError(
                f"cannot combine {self.token!r} {self.dims} with {other.token!r} {other.dims}: different encoder widths"
            )
        if self.layers != other.layers:
            raise ConceptError(
                f"cannot combine {self.token!r} ({_layers_text(self.layers)}) with {other.token!r} "
                f"({_layers_text(other.layers)}): a per-layer concept combines only with one of the same layer count "
                "(a single vector is repeated to match a vector count, never a layer count)"
            )
        if same_count and self.num_vectors != other.num_vectors:
            raise count_error((self.token, other.token), (self.num_vectors, other.num_vectors))

    def _binary(self, other: Any, fn, op: str) -> "Concept":
        if isinstance(other, Concept):
            mine, theirs = _broadcast_rows(self, other)
            return self._derived({k: fn(v, theirs[k]) for k, v in mine.items()}, op)
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            if op in ("+", "-"):
                raise ConceptError(f"cannot {op} a number and a concept; scale with * or / instead")
            return self._derived({k: fn(v, float(other)) for k, v in self.vectors.items()}, op)
        return NotImplemented

    def __add__(self, other: Any) -> "Concept":
        return self._binary(other, lambda a, b: a + b, "+")

    def __sub__(self, other: Any) -> "Concept":
        return self._binary(other, lambda a, b: a - b, "-")

    def __mul__(self, other: Any) -> "Concept":
        if isinstance(other, Concept):
            raise ConceptError("cannot multiply two concepts; multiply a concept by a number")
        return self._binary(other, lambda a, b: a * b, "*")

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> "Concept":
        if isinstance(other, Concept):
            raise ConceptError("cannot divide by a concept; divide by a number")
        if isinstance(other, (int, float)) and float(other) == 0.0:
            raise ConceptError("division of a concept by zero")
        return self._binary(other, lambda a, b: a / b, "/")

    def __neg__(self) -> "Concept":
        return self._derived({k: -v for k, v in self.vectors.items()}, "neg")

    def __getitem__(self, index: int | slice) -> "Concept":
        """Vector slice: ``c[0]`` keeps the first vector, ``c[1:3]`` the second and third."""
        n = self.num_vectors
        if isinstance(index, int):
            if not -n <= index < n:
                raise ConceptError(f"vector index {index} out of range for {self.token!r} with {n} vectors")
            index = slice(index % n, index % n + 1)
        if not isinstance(index, slice):
            raise ConceptError("index a concept with an int or a slice")
        sl = index
        picked = self._per_layer(lambda v: v[:, sl].clone())  # per layer for a per-layer concept
        if next(iter(picked.values())).shape[0] == 0:
            raise ConceptError(f"slice {index} selects no vectors of {self.token!r} ({n} vectors)")
        return self._derived(picked, "slice")

    def mean_vector(self) -> "Concept":
        """Collapse the N vectors into their mean (one vector per encoder)."""
        return self._derived(self._per_layer(lambda v: v.mean(dim=1, keepdim=True)), "mean")

    def normalized(self, norm: float | None = None) -> "Concept":
        """Rescale every vector to L2 norm ``norm`` (default: keep each encoder's mean norm).

        Learned vectors often drift far above the vocabulary's norms; ``normalized(norm=x)`` puts
        them back on a typical word's scale.
        """
        out = {}
        for k, v in self.vectors.items():
            n = v.norm(dim=1, keepdim=True).clamp_min(1e-12)
            target = float(norm) if norm is not None else n.mean()
            out[k] = v / n * target
        return self._derived(out, "normalize")

    def to(self, dtype: torch.dtype) -> "Concept":
        return self.replace(vectors={k: v.to(dtype) for k, v in self.vectors.items()})

    def __repr__(self) -> str:
        dims = ", ".join(f"{k}={d}" for k, d in self.dims.items())
        return f"Concept({self.token!r}, family={self.family}, vectors={self.num_vectors}, {dims})"


def _broadcast_rows(a: Concept, b: Concept) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``a``'s and ``b``'s rows at one vector count: a single vector is repeated to the other's count N.

    Per-layer concepts (same layer count, checked) repeat each layer's vector N times within that layer, so the
    layer-major ``[L·N, D]`` layout holds; for ordinary concepts this is exactly ``match_count(c, N, "pad")``.
    Raises :class:`VectorCountError` when the counts differ and neither is 1.
    """
    a.check_compatible(b, same_count=False)
    na, nb = a.num_vectors, b.num_vectors
    if na == nb:
        return a.vectors, b.vectors
    if na != 1 and nb != 1:
        raise count_error((a.token, b.token), (na, nb))
    single, n = (a, nb) if na == 1 else (b, na)
    # rows are layer-major, one per layer when the count is 1: repeating each row n times keeps every layer's block
    grown = {k: v.repeat_interleave(n, dim=0) for k, v in single.vectors.items()}
    return (grown, b.vectors) if na == 1 else (a.vectors, grown)


def broadcast(a: Concept, b: Concept) -> tuple[Concept, Concept]:
    """``a`` and ``b`` at one vector count, broadcasting a single vector (see the module docstring).

    The repeated operand is a derived concept (``meta["derived"] == "broadcast"``, layout metadata kept); the
    other, and both when the counts are equal, come back as they are.

    >>> one = Concept("<w>", {"clip": torch.tensor([[1.0, 2.0]])}, family="toy")
    >>> three = Concept("<c>", {"clip": torch.zeros(3, 2)}, family="toy")
    >>> broadcast(one, three)[0].vectors["clip"].tolist()
    [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]
    """
    ra, rb = _broadcast_rows(a, b)
    return (a if ra is a.vectors else a._derived(ra, "broadcast"),
            b if rb is b.vectors else b._derived(rb, "broadcast"))


def slerp(a: Concept, b: Concept, t: float) -> Concept:
    """Spherical interpolation per vector; ``t=0`` gives ``a`` exactly, ``t=1`` gives ``b`` exactly.

    A single vector broadcasts against N (it is repeated N times first, as ``match_count(x, N, "pad")``).
    """
    va, vb = _broadcast_rows(a, b)
    t = float(t)
    if t == 0.0:
        return a._derived({k: v.clone() for k, v in va.items()}, "slerp")
    if t == 1.0:
        return a._derived({k: v.clone() for k, v in vb.items()}, "slerp")
    return a._derived({k: _slerp_rows(v, vb[k], t) for k, v in va.items()}, "slerp")


def lerp(a: Concept, b: Concept, t: float) -> Concept:
    """Linear interpolation; exact at the endpoints. A single vector broadcasts against N, as in :func:`slerp`."""
    va, vb = _broadcast_rows(a, b)
    t = float(t)
    if t == 0.0:
        return a._derived({k: v.clone() for k, v in va.items()}, "lerp")
    if t == 1.0:
        return a._derived({k: v.clone() for k, v in vb.items()}, "lerp")
    return a._derived({k: (1 - t) * v + t * vb[k] for k, v in va.items()}, "lerp")


def concat(*concepts: Concept | Iterable[Concept]) -> Concept:
    """Stack the vectors of several concepts into one multi-vector concept (order kept)."""
    flat: list[Concept] = []
    for c in concepts:
        flat.extend([c] if isinstance(c, Concept) else list(c))
    if not flat:
        raise ConceptError("concat needs at least one concept")
    first = flat[0]
    for other in flat[1:]:
        first.check_compatible(other, same_count=False)
    if first.layers > 1:
        raise ConceptError(f"concat of per-layer concept {first.token!r} is not supported; concat ordinary concepts")
    check_vector_count(sum(c.num_vectors for c in flat), f"concat of {len(flat)} concepts")
    return first._derived({k: torch.cat([c.vectors[k] for c in flat], dim=0) for k in first.vectors}, "concat")


def match_count(a: Concept, n: int, mode: str = "pad") -> Concept:
    """Bring ``a`` to ``n`` vectors explicitly.

    ``mode="pad"`` repeats the last vector (shorter) or truncates (longer); ``mode="merge"``
    resamples the vectors by linear interpolation along the vector axis, so a 3-vector concept
    merged to 1 equals its mean-ish centre and a 1-vector concept expands to ``n`` copies.
    """
    check_vector_count(n, f"{mode}({a.token}, {n})")
    if a.layers > 1 and a.num_vectors != n:
        raise ConceptError(f"{mode} of per-layer concept {a.token!r} is not supported; flatten it first")
    if a.num_vectors == n:
        return a
    if mode == "pad":
        out = {}
        for k, v in a.vectors.items():
            out[k] = v[:n].clone() if v.shape[0] >= n else torch.cat([v, v[-1:].expand(n - v.shape[0], -1)], 0)
        return a._derived(out, "pad")
    if mode == "merge":
        if n == 1:
            return a.mean_vector()
        out = {}
        for k, v in a.vectors.items():
            src = torch.linspace(0, v.shape[0] - 1, n, dtype=torch.float64)
            lo = src.floor().long().clamp(max=v.shape[0] - 1)
            hi = (lo + 1).clamp(max=v.shape[0] - 1)
            w = (src - lo.double()).unsqueeze(1).to(v.dtype)
            out[k] = v[lo] * (1 - w) + v[hi] * w
        return a._derived(out, "merge")
    raise ConceptError(f"unknown count-matching mode {mode!r}: use 'pad' or 'merge'")


def layout_meta(c: Concept) -> dict[str, Any]:
    """The :data:`LAYOUT_META` entries of ``c.meta`` (what a derived concept must keep to be read right)."""
    return {k: c.meta[k] for k in LAYOUT_META if k in c.meta}


def keep_norm(c: Concept) -> Concept:
    """A directional concept (``meta["method"] == "directional"``) put back on its norm; others unchanged.

    Linear mixes of fixed-norm vectors leave the sphere; this keeps the result word-like.

    >>> c = Concept("<d>", {"clip": torch.tensor([[3.0, 4.0]])}, meta={"method": "directional", "norm": {"clip": 1.0}})
    >>> keep_norm(c).vectors["clip"].tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    norm = c.meta.get("norm") if c.meta.get("method") == "directional" else None
    if not isinstance(norm, dict):
        return c
    out = {k: v * (float(norm[k]) / v.norm(dim=1, keepdim=True).clamp_min(1e-12)) if k in norm else v.clone()
           for k, v in c.vectors.items()}
    return c.replace(vectors=out)


def cosine(a: Concept, b: Concept) -> float:
    """Cosine similarity of the flattened mean vectors (all encoders concatenated)."""
    a.check_compatible(b, same_count=False)
    va = torch.cat([a.vectors[k].double().mean(0) for k in sorted(a.vectors)])
    vb = torch.cat([b.vectors[k].double().mean(0) for k in sorted(b.vectors)])
    return float(torch.nn.functional.cosine_similarity(va, vb, dim=0))


__all__ = [
    "COUNT_FIX_PYTHON",
    "Concept",
    "ConceptError",
    "FAMILY_ENCODERS",
    "MAX_VECTORS",
    "SINGLE_KEY",
    "VectorCountError",
    "broadcast",
    "check_finite",
    "check_vector_count",
    "concat",
    "cosine",
    "count_error",
    "guess_family",
    "keep_norm",
    "layout_meta",
    "lerp",
    "match_count",
    "slerp",
    "vectors_text",
]

