"""Textual inversion: learn vectors for a new token from a few images.

See ARCHITECTURE.md, "a folder of pictures to the loop".

``ticraft.train(...)`` is the entry point (:func:`ticraft.training.api.train`, re-exported lazily by
``ticraft``); the package is called ``training`` so that ``ticraft.train`` is only ever that function.

Modules: ``config`` (TrainConfig, presets), ``data`` (images → cached latents, templates, captions),
``loop`` (the optimisation), ``schedule`` (progressive extension, regularisation, per-image tokens),
``checkpoint`` (save/resume), ``early_stop`` (DVAR), ``distributed`` (torchrun/accelerate data
parallel), ``report`` (previews, loss curve), ``api`` (``train``); ``many_specs`` (a train-many folder and
its concepts.toml), ``many`` (ConceptGroup: many concepts' samples in shared forward passes), ``many_api``
(``train_many``).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "train": "ticraft.training.api",
    "train_many": "ticraft.training.many_api",
    "TrainConfig": "ticraft.training.config",
    "PRESETS": "ticraft.training.config",
    "preset_config": "ticraft.training.config",
    "Trainer": "ticraft.training.loop",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

