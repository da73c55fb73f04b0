"""What changes over a run: active vector count (progressive extension), learning rate, the pull
towards the start (L2 regularisation), and the names of the learned tokens.

All functions here are pure and host-side: they depend on the step number only, so a resumed run
follows exactly the same schedule as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch

from ticraft.training.config import TrainConfig


def active_vectors(step: int, num_vectors: int, progressive: int | None) -> int:
    """Vectors in use while running ``step`` (0-based): all of them, or 1 + one more every K steps.

    >>> [active_vectors(s, 3, 2) for s in range(6)]
    [1, 1, 2, 2, 3, 3]
    """
    if not progressive:
        return num_vectors
    return min(num_vectors, 1 + step // progressive)


def growth_steps(num_vectors: int, progressive: int | None) -> list[int]:
    """Steps at which a vector is added (``[K, 2K, …]``)."""
    if not progressive:
        return []
    return [k * progressive for k in range(1, num_vectors)]


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of the learning rate at ``step``: linear warm-up, then constant, cosine or linear decay."""
    warm = config.warmup_steps
    if warm and step < warm:
        return (step + 1) / warm
    if config.lr_schedule == "constant":
        return 1.0
    span = max(1, config.steps - warm)
    progress = min(1.0, (step - warm) / span)
    if config.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress  # linear


def draw_timesteps(batch: int, num_timesteps: int, bias: str, generator: torch.Generator) -> torch.Tensor:
    """``batch`` training timesteps in ``[0, num_timesteps)``: uniform, or leaning to one end (``timestep_bias``).

    ``earlier`` draws t = T·u² (density ∝ 1/√t: half the draws in the lowest quarter of the schedule), ``later`` its
    mirror. The uniform draw is made either way and then replaced: the recorded suite runs drew them so, and a seed
    reproduces them.

    >>> g = torch.Generator().manual_seed(0)
    >>> t = draw_timesteps(4000, 1000, "earlier", g)
    >>> bool((t < 250).float().mean() > 0.45), int(t.min()) >= 0, int(t.max()) < 1000
    (True, True, True)
    """
    t = torch.randint(num_timesteps, (batch,), generator=generator)
    if bias == "none":
        return t
    u = torch.rand(batch, generator=generator)
    if bias == "earlier":
        u = u * u
    elif bias == "later":
        u = 1 - (1 - u) * (1 - u)
    else:
        raise ValueError(f"timestep bias must be none, earlier or later, got {bias!r}")
    return (num_timesteps * u).long().clamp_(max=num_timesteps - 1)


def regularization(vectors: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Σ_encoders mean_rows ‖v − v_init‖², the L2 pull towards the start."""
    total = None
    for key, v in vectors.items():
        d = (v.float() - targets[key][: v.shape[0]].float()).pow(2).sum(-1).mean()
        total = d if total is None else total + d
    assert total is not None
    return total


def image_token_names(token: str, count: int) -> list[str]:
    """Placeholder names of the per-image tokens S_i (``<tok@img0>``, …); they never clash with ``tok_1``."""
    inner = token[1:-1] if token.startswith("<") and token.endswith(">") else token
    return [f"<{inner}@img{i}>" for i in range(count)]
