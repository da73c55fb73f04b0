"""Direction-only inversion: each learned vector keeps a word-like L2 norm; only its direction is learned.

Plain inversion lets a vector's norm grow far beyond the vocabulary's (often 3–10× a typical word),
and such a word swamps the rest of a prompt. Here every vector is ``norm · v/‖v‖``, optimised on the sphere of
radius ``norm`` (Riemannian steps: the gradient is projected onto the sphere's tangent plane, the optimiser
steps, and the row is retracted back onto the sphere). ``norm`` defaults to the median row norm of each
encoder's token table (the vocabulary's typical norm), or ``config.norm`` for every encoder.

The concept records ``meta["method"] = "directional"`` and ``meta["norm"] = {encoder: norm}``; slerp keeps
the norm (equal endpoint norms), and :func:`ticraft.concept.keep_norm` puts a mix or a lerp back on the sphere
(``ticraft mix`` and ``ticraft interp`` apply it).
"""

from __future__ import annotations

from typing import Any

import torch

from ticraft.training.loop import Trainer


def typical_norm(table: torch.Tensor) -> float:
    """The median L2 norm of a token table's rows.

    >>> typical_norm(torch.tensor([[3.0, 4.0], [0.0, 1.0], [0.0, 2.0]]))
    2.0
    """
    return float(table.detach().float().norm(dim=1).median())


class DirectionalTrainer(Trainer):
    """A :class:`Trainer` whose concept rows stay on a sphere of fixed radius per encoder."""

    def __init__(self, backbone: Any, images: Any, token: str, init: str, config: Any, **kwargs: Any) -> None:
        super().__init__(backbone, images, token, init, config, **kwargs)
        self.norms = {e.key: float(config.norm) if config.norm is not None else typical_norm(e.table)
                      for e in backbone.encoders}
        with torch.no_grad():
            for k in self.keys:
                for p in self.rows[k]:
                    p.mul_(self.norms[k] / p.norm().clamp_min(1e-12))
        # the "did it move" check compares against where the run really started: the initializer on the sphere
        self.init_vectors = self.start_layout(self.init_vectors)

    def start_layout(self, vectors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Start vectors moved onto the sphere: their direction, this run's norm."""
        return {k: v * (self.norms[k] / v.norm(dim=1, keepdim=True).clamp_min(1e-12)) for k, v in vectors.items()}

    def apply_gradients(self) -> None:
        with torch.no_grad():
            for k in self.keys:
                for p in self.rows[k]:
                    if p.grad is not None:  # tangent component only: no step along the radius
                        u = p / p.norm().clamp_min(1e-12)
                        p.grad.sub_((p.grad * u).sum() * u)
        super().apply_gradients()
        with torch.no_grad():  # retraction back onto the sphere
            for k in self.keys:
                for p in self.rows[k]:
                    p.mul_(self.norms[k] / p.norm().clamp_min(1e-12))

    def method_meta(self) -> dict[str, Any]:
        return {"method": "directional", "norm": dict(self.norms)}


__all__ = ["DirectionalTrainer", "typical_norm"]
