"""What the image-making commands share: size parsing, A1111-style file names, saving, attaching to concepts.

Only typer/rich at the top (PIL and the generators load inside the functions).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from ticraft.cli.common import console
from ticraft.wording import counted

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"512x768"`` → ``(512, 768)``; ``"512"`` → ``(512, 512)``.

    >>> parse_size("64x32"), parse_size("48"), parse_size(None)
    ((64, 32), (48, 48), None)
    """
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*", text)
    if not m:
        raise typer.BadParameter(f"size must be WxH or N, got {text!r}", param_hint="--size")
    w = int(m.group(1))
    return w, int(m.group(2) or w)


def next_index(folder: Path) -> int:
    """The next free 5-digit counter in ``folder`` (A1111 names: ``00012-<seed>.png``)."""
    if not folder.is_dir():
        return 0
    taken = [int(m.group(1)) for p in folder.glob("*.png") if (m := re.match(r"(\d{5})-", p.name))]
    return max(taken, default=-1) + 1


def is_main_process() -> bool:
    """Under ``accelerate launch``/``torchrun`` every process generates its share and gets all images
    back; only rank 0 writes files (no duplicates, no races on the file counter)."""
    return int(os.environ.get("RANK", "0")) == 0


def save_all(images: list["Image.Image"], out: Path, suffix: str = "") -> list[Path]:
    """Save ``images`` as ``NNNNN-<seed><suffix>.png`` after the highest counter already in ``out``."""
    from ticraft.generate.pngmeta import read_parameters, save_png

    start = next_index(out)
    paths = []
    for k, img in enumerate(images):
        seed = read_parameters(img).get("seed", k)
        paths.append(save_png(img, out / f"{start + k:05d}-{seed}{suffix}.png"))
    return paths


def print_paths(paths: list[Path]) -> None:
    for p in paths:
        console.print(escape(str(p)))


def attach(library: Any, prompt: str, images: list["Image.Image"]) -> None:
    """Store the images with every concept the prompt names (the TUI shows them)."""
    from ticraft.prompts import find_concept_tokens

    tokens = find_concept_tokens(prompt)
    if not tokens:
        console.print("[yellow]--attach: the prompt names no concept; nothing attached[/]")
    for tok in tokens:
        paths = library.add_samples(tok, images)
        console.print(f"attached {counted(len(paths), 'sample')} to [cyan]{escape(tok)}[/] "
                      f"({escape(str(paths[0].parent))})")


def write_sample_grid(images: list["Image.Image"], out: Path) -> None:
    """A square-ish grid of ``images`` (titled with the prompt) next to them, named after the last counter."""
    import math

    from ticraft.generate.pngmeta import read_parameters, save_png
    from ticraft.imaging import make_grid

    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    cells = list(images) + [None] * (rows * cols - len(images))
    seeds = [f"seed {read_parameters(im)['seed']}" for im in images]
    g = make_grid(cells, rows=rows, cols=cols, title=read_parameters(images[0])["prompt"])
    g.info["parameters"] = images[0].info["parameters"]
    path = save_png(g, out / f"grid-{next_index(out) - 1:05d}.png")
    console.print(f"grid: {escape(str(path))} ({', '.join(seeds)})")
