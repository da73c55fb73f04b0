"""What a run leaves for people to look at: preview samples and the loss-curve picture.

Previews use the backbone's own diffusers pipeline with a fixed CPU generator per image, so the same
vectors always give the same previews (on the same device). Full sampling features (grids, PNG
metadata, schedulers) live in :mod:`ticraft.generate.sample`; this is the minimum the trainer needs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch


def preview_prompts(token: str, *, style: bool, count: int) -> list[str]:
    """A few prompts that show the concept (object) or apply it (style)."""
    base = (["a painting in the style of {}", "a picture in the style of {}", "a rendering in the style of {}"]
            if style else ["a photo of a {}", "a rendering of a {}", "a close-up photo of the {}"])
    return [base[i % len(base)].replace("{}", token) for i in range(count)]


@torch.no_grad()
def render_previews(backbone: Any, prompts: Sequence[str], *, seed: int = 0, steps: int = 25,
                    size: int | None = None) -> list[Any]:
    """Generate one image per (already expanded) prompt with ``backbone.pipeline()``; returns PIL images.

    A VAE that training parked on the CPU (``offload_vae``) joins the model's device for the call and goes back after.
    """
    vae_home = next(backbone.vae.parameters()).device
    if vae_home != backbone.device:
        backbone.vae.to(backbone.device)
    try:
        pipe = backbone.pipeline()
        # Batched calls (a generator per image draws the same starting noise as one call per image did): on the toy
        # model 4 previews cost 25 % less CPU than 4 calls (benchmarks/train_startup.py). At most 4 × 512² pixels
        # per call, so big models keep the memory of one-at-a-time previews.
        chunk = max(1, (4 * 512 * 512) // max(1, size or 512) ** 2)
        images = []
        for start in range(0, len(prompts), chunk):
            part = list(prompts[start:start + chunk])
            generators = [torch.Generator(device="cpu").manual_seed(seed + start + i) for i in range(len(part))]
            out = pipe(part, num_inference_steps=steps, generator=generators, height=size, width=size,
                       output_type="pil")
            images += list(out.images)
    finally:
        if vae_home != backbone.device:
            backbone.vae.to(vae_home)
    return images


def plot_loss_curve(loss_curve: Sequence[Sequence[float]], path: str | os.PathLike, *,
                    eval_curve: Sequence[Sequence[float]] = (), title: str = "") -> Path | None:
    """Write a PNG of the training (and evaluation) loss; ``None`` (with a warning) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
    except ImportError:
        warnings.warn("matplotlib is not installed: no loss-curve picture (pip install 'ticraft[maps]')", stacklevel=2)
        return None
    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    if loss_curve:
        xs, ys = zip(*[(s, v) for s, v in loss_curve], strict=True)
        ax.plot(xs, ys, label="training loss", lw=1.2)
    if eval_curve:
        xs, ys = zip(*[(s, v) for s, v in eval_curve], strict=True)
        ax.plot(xs, ys, label="evaluation loss (fixed batch)", lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from ticraft.io import atomic_file

    path = Path(path)
    with atomic_file(path) as fh:  # written 0644: a loss curve is for everyone to open
        fig.savefig(fh, format="png")
    return path
