"""Errors and checks on concept vectors: non-finite values, vector counts and how their mismatch is worded.

Kept apart from :mod:`ticraft.concept` (which re-exports every name here) so that module stays about the
:class:`~ticraft.concept.Concept` type and its arithmetic.
"""

from __future__ import annotations

import torch

from ticraft.concept_spec import MAX_VECTORS
from ticraft.errors import TicraftError
from ticraft.wording import counted


class ConceptError(TicraftError):
    """Raised when concepts cannot be combined or are malformed."""


class VectorCountError(ConceptError):
    """Two concepts whose vector counts differ where they must agree: neither has exactly one vector (so nothing
    broadcasts), or :meth:`Concept.check_compatible` was asked for equal counts.

    ``tokens`` and ``counts`` are the two operands' tokens and vector counts, so a caller with its own way of
    writing the fix (the mix language's ``pad(x, n)``, the CLI's ``--match``) can word the message itself.
    """

    def __init__(self, message: str, tokens: tuple[str, str] = ("", ""), counts: tuple[int, int] = (0, 0)) -> None:
        super().__init__(message)
        self.tokens = tokens
        self.counts = counts


def vectors_text(n: int) -> str:
    """``"1 vector"``, ``"3 vectors"``.

    >>> vectors_text(1), vectors_text(3)
    ('1 vector', '3 vectors')
    """
    return counted(n, "vector")


def _layers_text(n: int) -> str:
    return counted(n, "layer")


#: How Python code brings two vector counts together (the end of a :class:`VectorCountError`'s message).
COUNT_FIX_PYTHON = ('bring them to one count first with match_count(c, n, "pad") or match_count(c, n, "merge"), '
                    "c.mean_vector() or a slice c[i:j]")


def check_finite(t: torch.Tensor, what: str) -> None:
    """Raise :class:`ConceptError` when ``t`` holds NaN or ±inf (``what`` names it in the message).

    Non-finite vectors turn every image they touch black or into noise; they are refused wherever vectors
    are made or read (mix, import, convert, train, PNG) rather than saved.

    >>> check_finite(torch.tensor([1.0, float("nan")]), "x")
    Traceback (most recent call last):
    ...
    ticraft.concept_checks.ConceptError: x holds non-finite values (1 NaN, 0 infinite of 2); refusing them
    """
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        nan = int(torch.isnan(t).sum())
        inf = int(torch.isinf(t).sum())
        raise ConceptError(f"{what} holds non-finite values ({nan} NaN, {inf} infinite of {t.numel()}); refusing them")


def check_vector_count(n: int, what: str = "a concept") -> int:
    """``n`` if ``1 ≤ n ≤`` :data:`MAX_VECTORS`, else a :class:`ConceptError` (checked before allocating)."""
    if not 1 <= n <= MAX_VECTORS:
        raise ConceptError(f"{what} would have {n} vectors; a concept has 1 to {MAX_VECTORS} (the prompt budget)")
    return n


def count_error(tokens: tuple[str, str], counts: tuple[int, int], fix: str = COUNT_FIX_PYTHON) -> VectorCountError:
    """The :class:`VectorCountError` for two operands whose vector counts differ, ending in ``fix`` (how to match).

    >>> print(count_error(("<a>", "w"), (2, 3), "fix"))
    cannot combine '<a>' (2 vectors) with 'w' (3 vectors): only a single vector repeats to match another count; fix
    """
    single = "only a single vector repeats to match another count; " if 1 not in counts else ""
    return VectorCountError(
        f"cannot combine {tokens[0]!r} ({vectors_text(counts[0])}) with {tokens[1]!r} ({vectors_text(counts[1])}): "
        f"{single}{fix}",
        tokens, counts,
    )


def _slerp_rows(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of each row pair, interpolating the norms linearly.

    Falls back to linear interpolation where the rows are (anti)parallel, where slerp is undefined.
    """
    af, bf = a.double(), b.double()
    na, nb = af.norm(dim=1, keepdim=True), bf.norm(dim=1, keepdim=True)
    ua, ub = af / na.clamp_min(1e-12), bf / nb.clamp_min(1e-12)
    dot = (ua * ub).sum(dim=1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(dot)
    so = torch.sin(omega)
    safe = so.abs() > 1e-6
    wa = torch.where(safe, torch.sin((1 - t) * omega) / torch.where(safe, so, 1.0), torch.full_like(so, 1 - t))
    wb = torch.where(safe, torch.sin(t * omega) / torch.where(safe, so, 1.0), torch.full_like(so, t))
    direction = wa * ua + wb * ub
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-12)
    out = direction * ((1 - t) * na + t * nb)
    lerp = (1 - t) * af + t * bf
    out = torch.where(safe, out, lerp)
    return out.to(a.dtype)
