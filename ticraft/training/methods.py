"""Which trainer learns a concept: ``plain`` (the paper's), ``xti`` (per layer) or ``directional`` (fixed norm)."""

from __future__ import annotations

from typing import Any

from ticraft.training.config import METHODS
from ticraft.training.loop import Trainer, TrainError


def method_trainer(backbone: Any, images: Any, token: str, init: str, config: Any, **kwargs: Any) -> Trainer:
    """The denoising trainer for ``config.method`` (SD-1.x/2.x/XL and the toy model)."""
    if config.method == "xti":
        from ticraft.training.xti import XTITrainer

        return XTITrainer(backbone, images, token, init, config, **kwargs)
    if config.method == "directional":
        from ticraft.training.directional import DirectionalTrainer

        return DirectionalTrainer(backbone, images, token, init, config, **kwargs)
    if config.method == "plain":
        return Trainer(backbone, images, token, init, config, **kwargs)
    raise TrainError(f"unknown training method {config.method!r}; choose {', '.join(METHODS)}")


__all__ = ["method_trainer"]
