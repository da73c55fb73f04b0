"""Textual inversion: learn vectors for a new token from a few images (DESIGN.md §5).

``ticraft.train(...)`` is the entry point (:func:`ticraft.train.api.train`). This package module is
itself callable, so ``ticraft.train(...)`` works whether ``ticraft.train`` resolves to the function or,
after ``import ticraft.train.<something>``, to this package.

Modules: ``config`` (TrainConfig, presets), ``data`` (images → cached latents, templates, captions),
``loop`` (the optimisation), ``schedule`` (progressive extension, regularisation, per-image tokens),
``checkpoint`` (save/resume), ``early_stop`` (DVAR), ``distributed`` (torchrun/accelerate data
parallel), ``report`` (previews, loss curve), ``api`` (``train``).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_LAZY = {
    "train": "ticraft.train.api",
    "TrainConfig": "ticraft.train.config",
    "PRESETS": "ticraft.train.config",
    "preset_config": "ticraft.train.config",
    "Trainer": "ticraft.train.loop",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ticraft.train.api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
