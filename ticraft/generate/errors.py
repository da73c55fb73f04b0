"""The errors and warnings of generation (kept apart so every generate module can raise them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ticraft.errors import TicraftError, TicraftWarning

__all__ = ["SampleError", "PromptBudgetWarning", "ReproductionWarning", "GuidanceWarning", "ProgressCallback"]

#: ``callback(step, total)`` — compatible with the trainer's ``callback(step, total, loss=None, vectors=None)``.
ProgressCallback = Callable[..., Any]


class SampleError(TicraftError):
    """Generation settings are invalid or a request cannot be carried out."""


class PromptBudgetWarning(TicraftWarning):
    """A prompt (with concept vectors expanded) is longer than CLIP's 75 usable tokens."""


class ReproductionWarning(TicraftWarning):
    """A re-created image will differ from the original (another model, or a concept changed since)."""


class GuidanceWarning(TicraftWarning):
    """A guidance value or negative prompt that the model's pipeline treats differently than written.

    diffusers' SD-style and SD3 pipelines run classifier-free guidance only when ``guidance_scale > 1``:
    below that the image is conditional-only (as at 1) and the negative prompt is never encoded.
    """
