"""`ticraft sample` and `ticraft compose`: make images with concepts (see also `edit_cmd`, `info_cmd`).

Only typer/rich at the top; torch/diffusers load inside the commands.

Examples::

    ticraft sample "a photo of <cat-toy> on the beach" -n 4 --seed 7 --out shots/
    ticraft sample --from shots/00003-9.png            # the same image again, bit for bit
    ticraft compose "<cat-toy>" "<dog-toy>" cat -t "a photo of {}" -t "a painting of {} in the style of <style>"
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape

from ticraft.cli.common import console, load_model, open_library
from ticraft.cli.options import (
    AttachOption,
    BatchSizeOption,
    CountOption,
    DenoiseStepsOption,
    DeviceOption,
    DtypeOption,
    GuidanceOption,
    LibraryOption,
    ModelOption,
    NegativeOption,
    OutFolderOption,
    Scheduler,
    SchedulerOption,
    SizeOption,
    first_seed,
    value,
)
from ticraft.cli.outputs import (
    attach,
    is_main_process,
    next_index,
    parse_size,
    print_paths,
    save_all,
    write_sample_grid,
)
from ticraft.cli.progress import sampling_progress
from ticraft.wording import counted

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image


def register(app: typer.Typer) -> None:
    """Add `sample` and `compose` to the main app."""
    app.command("sample")(sample_command)
    app.command("compose")(compose_command)


# ----------------------------------------------------------------- sample
def sample_command(
    ctx: typer.Context,
    prompt: Annotated[
        Optional[str], typer.Argument(help="Prompt; concept tokens like <cat-toy> come from the library.")
    ] = None,
    model: ModelOption = None,
    n: CountOption = 1,
    seed: Annotated[Optional[int], typer.Option("--seed", "-s", help="First seed (default 0; -1: random).")] = None,
    steps: DenoiseStepsOption = None,
    guidance: GuidanceOption = None,
    scheduler: SchedulerOption = None,
    negative: Annotated[
        Optional[str], typer.Option("--negative", help="Negative prompt (concept tokens work here too).")
    ] = None,
    size: SizeOption = None,
    out: OutFolderOption = Path("samples"),
    batch_size: BatchSizeOption = 8,
    from_image: Annotated[
        Optional[Path],
        typer.Option("--from", help="Re-create an image from its PNG metadata (bit-exact on the same device)."),
    ] = None,
    grid: Annotated[bool, typer.Option("--grid", help="Also write a grid of the images.")] = False,
    attach_: AttachOption = False,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Generate images from a prompt that may use library concepts; every PNG records its parameters.

    Re-create an image bit for bit: [bold]ticraft sample --from IMAGE.png[/] (same device and model).
    Split a big job between GPUs/processes: [bold]accelerate launch --num_processes 2 -m ticraft.cli.main
    sample "…" -n 256[/] (rank 0 writes the files).
    """
    from ticraft.errors import TicraftError

    if (prompt is None) == (from_image is None):
        raise TicraftError("give a prompt, or --from IMAGE to re-create an image (not both)")
    if grid and n < 2:  # one picture makes no grid: say so instead of writing none
        raise TicraftError(f"--grid needs at least 2 pictures: add -n 2 or more (got -n {n})")
    wh = parse_size(size)
    if from_image is not None:
        overrides = _overrides(seed=seed, steps=steps, guidance=guidance, scheduler=scheduler, negative=negative,
                               size=wh)
        if not overrides and n == 1 and _given(ctx, "batch_size"):
            # an exact re-creation replays the image's own batch size (kernels round by batch shape): another one
            # would not be used, and using it would not give the same pixels
            raise TicraftError("--batch-size does not apply to an exact re-creation with --from (it replays the batch "
                               "size the image was made with, for the same pixels); drop it")
    lib = open_library(library)
    if from_image is not None:
        images, prompt = _sample_from(
            from_image,
            model,
            lib,
            n=n,
            overrides=overrides,
            device=device,
            dtype=value(dtype),
            batch_size=batch_size,
        )
    else:
        from ticraft.generate.sample import SampleSpec, generate

        backbone = load_model(model, device, dtype)
        assert prompt is not None  # checked above: a prompt or --from
        start = first_seed(seed or 0)
        specs = [
            SampleSpec(
                prompt=prompt,
                negative=negative or "",
                seed=start + i,
                steps=steps,
                guidance=guidance,
                scheduler=value(scheduler),
                width=wh[0] if wh else None,
                height=wh[1] if wh else None,
            )
            for i in range(n)
        ]
        with sampling_progress(f"sampling {counted(n, 'image')}") as callback:
            images = generate(backbone, specs, library=lib, batch_size=batch_size, callback=callback)
    if not is_main_process():
        return
    assert prompt is not None
    print_paths(save_all(images, out))
    if grid:
        write_sample_grid(images, out)
    if attach_:
        attach(lib, prompt, images)


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given rather than left at its default.

    Typer vendors its own click, so its ParameterSource is compared by name, not against click's enum.
    """
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def _model_for(params: dict[str, Any], model: str | None) -> str | None:
    """--model wins; an image made by the shipped toy model names it; else the configured default."""
    if model is not None:
        return model
    return "toy" if params.get("model") == "toy" else None


def _overrides(
    *,
    seed: int | None,
    steps: int | None,
    guidance: float | None,
    scheduler: Scheduler | None,
    negative: str | None,
    size: tuple[int, int] | None,
) -> dict[str, Any]:
    """The recorded fields ``--from`` replaces: those given (a seed of -1 drawn once, here)."""
    overrides: dict[str, Any] = {
        k: v
        for k, v in dict(
            seed=None if seed is None else first_seed(seed),
            steps=steps,
            guidance=guidance,
            scheduler=value(scheduler),
            negative=negative,
        ).items()
        if v is not None
    }
    if size is not None:
        overrides.update(width=size[0], height=size[1])
    return overrides


def _sample_from(
    path: Path,
    model: str | None,
    lib: Any,
    *,
    n: int,
    overrides: dict[str, Any],
    device: str | None,
    dtype: str | None,
    batch_size: int = 8,
) -> tuple[list["Image.Image"], str]:
    """``--from``: exact re-creation, or — when ``overrides`` replace fields or ``n`` > 1 — new images from those
    settings.

    An exact re-creation replays the batch size the image was made with (kernels round by batch); new images
    use ``batch_size``.
    """
    from dataclasses import replace

    from ticraft.generate.pngmeta import read_parameters
    from ticraft.generate.sample import SampleSpec, generate, reproduce, spec_from_parameters
    from ticraft.generate.specs import drop_unread_negative

    params = read_parameters(path)
    base = spec_from_parameters(params)
    backbone = load_model(_model_for(params, model), device, dtype)
    if not overrides and n == 1:
        with sampling_progress("re-creating") as callback:
            return [reproduce(backbone, params, library=lib, callback=callback)], base.prompt
    with sampling_progress(f"sampling {counted(n, 'image')}") as callback:
        # a negative the image records but Flux never read is dropped (said so); one given with --negative is refused
        spec: SampleSpec = replace(drop_unread_negative(backbone, base), **overrides)
        specs = [replace(spec, seed=spec.seed + i) for i in range(n)]
        return generate(backbone, specs, library=lib, batch_size=batch_size, callback=callback), base.prompt


# ----------------------------------------------------------------- compose
def compose_command(
    subjects: Annotated[list[str], typer.Argument(help="Rows: concept tokens (<cat-toy>) or plain words (cat).")],
    template: Annotated[
        Optional[list[str]],
        typer.Option("--template", "-t", help="Column prompt with {} for the subject (repeatable)."),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds per template (one column each).")] = 1,
    seed: Annotated[int, typer.Option("--seed", "-s", help="First seed; column seeds are seed, seed+1, …")] = 0,
    negative: NegativeOption = "",
    steps: DenoiseStepsOption = None,
    guidance: GuidanceOption = None,
    scheduler: SchedulerOption = None,
    size: SizeOption = None,
    out: OutFolderOption = Path("samples"),
    name: Annotated[Optional[str], typer.Option("--name", help="Grid file name (default compose-NNNNN).")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Title printed above the grid.")] = None,
    batch_size: BatchSizeOption = 8,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """A grid: subjects (rows) × templates and seeds (columns), seeds fixed per column so rows compare."""
    from ticraft.generate.pngmeta import save_png
    from ticraft.generate.sample import compose

    templates = template or ["a photo of {}", "a painting of {}"]
    wh = parse_size(size)
    lib = open_library(library)
    backbone = load_model(model, device, dtype)
    extra: dict[str, Any] = {"width": wh[0], "height": wh[1]} if wh else {}
    with sampling_progress(f"composing {len(subjects)}×{len(templates) * seeds}") as callback:
        result = compose(
            backbone,
            subjects,
            templates,
            seeds=[seed + k for k in range(seeds)],
            negative=negative,
            library=lib,
            batch_size=batch_size,
            callback=callback,
            title=title,
            steps=steps,
            guidance=guidance,
            scheduler=value(scheduler),
            **extra,
        )
    if not is_main_process():
        return
    stem = name or f"compose-{next_index(out):05d}"
    grid_path = save_png(result.grid, out / f"{stem}.png")
    for r, row in enumerate(result.images):
        for c, img in enumerate(row):
            save_png(img, out / stem / f"r{r:02d}-c{c:02d}.png")
    console.print(f"grid: {escape(str(grid_path))} ({len(subjects)} rows × {len(result.col_labels)} columns)")
    console.print(f"cells: {escape(str(out / stem))}/r??-c??.png")
