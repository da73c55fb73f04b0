"""What a concept may hold: model families with their encoder keys and widths, the order of those keys,
the metadata that describes a concept's layout, and the most vectors one concept may have.

Plain constants and a family guess, no tensors: :mod:`ticraft.concept` re-exports every public name here.
"""

from __future__ import annotations

from typing import Mapping

__all__ = ["FAMILY_ENCODERS", "KEY_ORDER", "LAYOUT_META", "MAX_VECTORS", "SINGLE_KEY", "guess_family"]

#: Known model families and the encoder keys + widths their concepts carry.
#: ``toy`` widths depend on the shipped toy model, so they are not fixed here.
FAMILY_ENCODERS: dict[str, dict[str, int | None]] = {
    "sd1": {"clip": 768},
    "sd2": {"clip": 1024},
    "sdxl": {"clip_l": 768, "clip_g": 1280},
    "toy": {"clip": None},
    "custom": {"clip": None},  # any other single-encoder model (e.g. tiny test models)
    # SD3/SD3.5 and Flux learn in T5-XXL (4096-d) as well as CLIP (keys as ComfyUI names them; issue 17)
    "sd3": {"clip_l": 768, "clip_g": 1280, "t5": 4096},
    "flux": {"clip_l": 768, "t5": 4096},
}

SINGLE_KEY = "clip"
#: The order of encoder keys in every Concept's ``vectors`` (others follow, alphabetically).
KEY_ORDER = ("clip", "clip_l", "clip_g", "t5")


def _key_rank(key: str) -> tuple[int, str]:
    return (KEY_ORDER.index(key) if key in KEY_ORDER else len(KEY_ORDER), key)

#: Metadata that describes how a concept's rows are laid out or constrained (per-layer XTI concepts, directional
#: concepts' fixed norm); arithmetic, interpolation and mixing carry it to their results.
LAYOUT_META = ("method", "xti_layers", "norm")

#: The most vectors one concept may have: CLIP reads 75 tokens of a prompt (77 minus start and end),
#: so a concept with more could never appear whole in any prompt.
MAX_VECTORS = 75


def guess_family(dims: Mapping[str, int]) -> str | None:
    """Guess the family from encoder keys and widths (``None`` when ambiguous).

    >>> guess_family({"clip": 768}), guess_family({"clip_l": 768, "clip_g": 1280})
    ('sd1', 'sdxl')
    """
    for family, encoders in FAMILY_ENCODERS.items():
        if family in ("toy", "custom"):
            continue
        if set(encoders) == set(dims) and all(encoders[k] == dims[k] for k in dims):
            return family
    return None
