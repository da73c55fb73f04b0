"""ticraft: textual inversion, and a home for what it learns."""

from __future__ import annotations

import importlib
from typing import Any

# Public names imported on first use, so that `import ticraft` stays light (no torch/diffusers).
_LAZY = {"train": "ticraft.training.api", "train_many": "ticraft.training.many_api",
         "sample": "ticraft.generate.sample"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ticraft' has no attribute {name!r}")
