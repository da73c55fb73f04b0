"""Early stopping on a deterministic evaluation loss (DVAR, Voronov et al., arXiv 2302.04841).

The training loss of textual inversion is too noisy to show convergence: every step draws new images,
timesteps and noise. DVAR instead evaluates the *same* loss on a fixed set of (image, prompt, t, ε)
every few steps and stops when that curve has flattened: the variance over the last ``window``
evaluations, divided by the variance over all evaluations so far, falls below ``threshold``.

The fixed evaluation batch itself is built by the loop (it needs the model); this module holds the
criterion, which is pure bookkeeping and part of the checkpoint state.

>>> s = DVAR(window=3, threshold=0.05)
>>> [s.update(x) for x in [1.0, 0.6, 0.4, 0.3, 0.25, 0.24, 0.24]]
[False, False, False, False, False, True, True]
>>> round(s.ratio(), 4)  # the last three values barely vary compared with the whole curve
0.0003
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class DVAR:
    """Stop when var(last ``window`` values) / var(all values) < ``threshold``."""

    window: int = 20
    threshold: float = 0.15
    history: list[float] = field(default_factory=list)

    def ratio(self) -> float | None:
        """The current variance ratio, or ``None`` until there are more than ``window`` values."""
        if len(self.history) <= self.window:
            return None
        total = float(np.var(self.history))
        if total == 0.0:
            return 0.0
        return float(np.var(self.history[-self.window:])) / total

    def update(self, value: float) -> bool:
        """Record one evaluation loss; ``True`` when training should stop."""
        self.history.append(float(value))
        r = self.ratio()
        return r is not None and r < self.threshold

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = [float(x) for x in state.get("history", [])]
