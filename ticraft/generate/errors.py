"""The errors and warnings of generation (kept apart so every generate module can raise them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ticraft.errors import TicraftError

__all__ = ["SampleError", "PromptBudgetWarning", "ReproductionWarning", "ProgressCallback"]

#: ``callback(step, total)`` — compatible with the trainer's ``callback(step, total, loss=None, vectors=None)``.
ProgressCallback = Callable[..., Any]


class SampleError(TicraftError):
    """Generation settings are invalid or a request cannot be carried out."""


class PromptBudgetWarning(UserWarning):
    """A prompt (with concept vectors expanded) is longer than CLIP's 75 usable tokens."""


class ReproductionWarning(UserWarning):
    """A re-created image will differ from the original (another model, or a concept changed since)."""
