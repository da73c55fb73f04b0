"""`ticraft edit IMAGE PROMPT [--mask MASK]`: img2img, or inpainting inside a mask, with concepts.

Example::

    ticraft edit room.png "a photo of <cat-toy> on a sofa" --mask sofa.png --strength 0.9
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ticraft.cli.common import load_model, open_library
from ticraft.cli.options import (
    AttachOption,
    BatchSizeOption,
    DenoiseStepsOption,
    DeviceOption,
    DtypeOption,
    GuidanceOption,
    LibraryOption,
    ModelOption,
    NegativeOption,
    OutFolderOption,
    RandomSeedOption,
    SchedulerOption,
    SizeOption,
    first_seed,
    value,
)
from ticraft.cli.outputs import attach, parse_size, print_paths, save_all
from ticraft.cli.progress import sampling_progress


def register(app: typer.Typer) -> None:
    """Add `edit` to the main app."""
    app.command("edit")(edit_command)


def edit_command(
    image: Annotated[Path, typer.Argument(help="The picture to edit.")],
    prompt: Annotated[str, typer.Argument(help='What it should show, e.g. "a photo of <cat-toy> on a sofa".')],
    mask: Annotated[
        Optional[Path], typer.Option("--mask", help="White = region to change (inpainting); the rest is kept.")
    ] = None,
    strength: Annotated[
        Optional[float],
        typer.Option("--strength", min=0.0, max=1.0, help="0–1; default 0.75 (img2img) / 1.0 (with --mask)."),
    ] = None,
    n: Annotated[int, typer.Option("--num", "-n", min=1, help="How many variants (seeds seed, seed+1, …).")] = 1,
    seed: RandomSeedOption = 0,
    negative: NegativeOption = "",
    steps: DenoiseStepsOption = None,
    guidance: GuidanceOption = None,
    scheduler: SchedulerOption = None,
    size: SizeOption = None,
    out: OutFolderOption = Path("samples"),
    batch_size: BatchSizeOption = 8,
    attach_: AttachOption = False,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Edit an image with concepts: img2img, or inpainting inside --mask (the paper's downstream use)."""
    from ticraft.generate.edit import check_size, edit

    wh = parse_size(size)
    if wh is not None:
        check_size(wh)  # sample's rule, before the model loads
    lib = open_library(library)
    backbone = load_model(model, device, dtype)
    start = first_seed(seed)
    with sampling_progress(f"editing ({'inpaint' if mask else 'img2img'})") as callback:
        images = edit(
            backbone,
            image,
            prompt,
            mask=mask,
            strength=strength,
            negative=negative,
            seed=start,
            n=n,
            steps=steps,
            guidance=guidance,
            scheduler=value(scheduler),
            size=wh,
            library=lib,
            batch_size=batch_size,
            callback=callback,
        )
    print_paths(save_all(images, out, suffix="-edit"))
    if attach_:
        attach(lib, prompt, images)
