"""The small random training pictures the training tests write (one helper instead of a copy per module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_images(folder: Path, n: int = 2, size: int = 20, *, seed: int = 0, alpha: bool = False,
                 captions: list[str] | None = None) -> Path:
    """``n`` random ``size``-px PNGs ``img{i}.png`` (RGBA with ``alpha``), each with ``img{i}.txt`` from ``captions``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = rng.integers(0, 255, (size, size, 4 if alpha else 3), dtype=np.uint8)
        Image.fromarray(arr, "RGBA" if alpha else "RGB").save(folder / f"img{i}.png")
        if captions is not None:
            (folder / f"img{i}.txt").write_text(captions[i])
    return folder
