"""`ticraft sample`, `ticraft compose`, `ticraft info`, `ticraft edit`: make and inspect images with concepts.

Only typer/rich at the top; torch/diffusers load inside the commands (``ticraft info`` needs Pillow only).

Examples::

    ticraft sample "a photo of <cat-toy> on the beach" -n 4 --seed 7 --out shots/
    ticraft sample --from shots/00003-9.png            # the same image again, bit for bit
    ticraft compose "<cat-toy>" "<dog-toy>" cat -t "a photo of {}" -t "a painting of {} in the style of <style>"
    ticraft info shots/00003-9.png
    ticraft edit room.png "a photo of <cat-toy> on a sofa" --mask sofa.png --strength 0.9
"""

from __future__ import annotations

import json
import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ticraft.cli.common import LibraryOption, ModelOption, console, err_console

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

# ----------------------------------------------------------------- options
StepsOption = Annotated[Optional[int], typer.Option("--steps", min=1, help="Denoising steps (default: the model's).")]
GuidanceOption = Annotated[
    Optional[float],
    typer.Option("--guidance", "--cfg", min=0.0, help="Classifier-free guidance scale (default: the model's)."),
]
SchedulerOption = Annotated[
    Optional[str],
    typer.Option("--scheduler", "--sampler",
                 help="ddim, ddpm, euler, euler_a, heun, dpm++, dpm++_sde, unipc, pndm, lms (default: the model's)."),
]
NegativeOption = Annotated[str, typer.Option("--negative", help="Negative prompt (concept tokens work here too).")]
SizeOption = Annotated[
    Optional[str], typer.Option("--size", help="Image size WxH or N (multiples of 8; default: the model's).")
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
BatchOption = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per model call.")]
DeviceOption = Annotated[
    Optional[str], typer.Option("--device", help="auto, cpu, cuda or cuda:N (default: config, else auto).")
]
DtypeOption = Annotated[
    Optional[str], typer.Option("--dtype", help="auto, fp32, fp16 or bf16 (auto: bf16/fp16 on CUDA).")
]
AttachOption = Annotated[
    bool, typer.Option("--attach", help="Also store the images in the library under each concept's samples/.")
]


def register(app: typer.Typer) -> None:
    """Add `sample`, `compose`, `info` and `edit` to the main app."""
    app.command("sample")(sample_command)
    app.command("compose")(compose_command)
    app.command("info")(info_command)
    app.command("edit")(edit_command)


# ----------------------------------------------------------------- helpers
def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"512x768"`` → ``(512, 768)``; ``"512"`` → ``(512, 512)``."""
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


def _quiet_model_libraries() -> None:
    # transformers/diffusers chatter (optional torchvision, unused config keys) is noise on a CLI.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars for a few-MB model
    except ImportError:  # pragma: no cover
        pass


def _load_model(model: str | None, device: str | None, dtype: str | None) -> Any:
    _quiet_model_libraries()
    from ticraft.generate.sample import cached_backbone

    with console.status(f"loading model {escape(model or '(configured default)')}…", spinner="dots"):
        return cached_backbone(model, device=device, dtype=dtype)


@contextmanager
def _progress(label: str) -> Iterator[Any]:
    """A Rich progress bar fed by ``callback(step, total)``; ticraft warnings are printed in yellow after."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ticraft.generate.sample import PromptBudgetWarning, ReproductionWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PromptBudgetWarning)
        warnings.simplefilter("always", ReproductionWarning)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err_console, transient=True) as bar:
            task = bar.add_task(label, total=None)

            def callback(step: int, total: int, *_: Any, **__: Any) -> None:
                bar.update(task, completed=step, total=total)

            yield callback
    for w in caught:
        if issubclass(w.category, (PromptBudgetWarning, ReproductionWarning)):
            console.print(f"[yellow]warning: {escape(str(w.message))}[/]")


def _save_all(images: list["Image.Image"], out: Path, suffix: str = "") -> list[Path]:
    from ticraft.generate.pngmeta import read_parameters, save_png

    start = next_index(out)
    paths = []
    for k, img in enumerate(images):
        seed = read_parameters(img).get("seed", k)
        paths.append(save_png(img, out / f"{start + k:05d}-{seed}{suffix}.png"))
    return paths


def _attach(library: Any, prompt: str, images: list["Image.Image"]) -> None:
    """Store the images with every concept the prompt names (the TUI shows them)."""
    from ticraft.prompts import find_concept_tokens

    tokens = find_concept_tokens(prompt)
    if not tokens:
        console.print("[yellow]--attach: the prompt names no concept; nothing attached[/]")
    for tok in tokens:
        paths = library.add_samples(tok, images)
        console.print(f"attached {len(paths)} sample(s) to [cyan]{escape(tok)}[/] ({escape(str(paths[0].parent))})")


def is_main_process() -> bool:
    """Under ``accelerate launch``/``torchrun`` every process generates its share and gets all images
    back; only rank 0 writes files (no duplicates, no races on the file counter)."""
    return int(os.environ.get("RANK", "0")) == 0


def _print_paths(paths: list[Path]) -> None:
    for p in paths:
        console.print(escape(str(p)))


# ----------------------------------------------------------------- sample
def sample_command(
    prompt: Annotated[
        Optional[str], typer.Argument(help="Prompt; concept tokens like <cat-toy> come from the library.")
    ] = None,
    model: ModelOption = None,
    n: Annotated[int, typer.Option("--num", "-n", min=1, help="How many images (seeds seed, seed+1, …).")] = 1,
    seed: Annotated[Optional[int], typer.Option("--seed", "-s", help="First seed (default 0; -1: random).")] = None,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    scheduler: SchedulerOption = None,
    negative: Annotated[
        Optional[str], typer.Option("--negative", help="Negative prompt (concept tokens work too).")
    ] = None,
    size: SizeOption = None,
    out: OutOption = Path("samples"),
    batch_size: BatchOption = 8,
    from_image: Annotated[
        Optional[Path],
        typer.Option("--from", help="Re-create an image from its PNG metadata (bit-exact on the same device)."),
    ] = None,
    grid: Annotated[bool, typer.Option("--grid", help="Also write a grid of the images.")] = False,
    attach: AttachOption = False,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Generate images from a prompt that may use library concepts; every PNG records its parameters.

    Re-create an image bit for bit: [bold]ticraft sample --from IMAGE.png[/] (same device and model).
    Split a big job between GPUs/processes: [bold]accelerate launch --num_processes 2 -m ticraft.cli.main
    sample "…" -n 256[/] (rank 0 writes the files).
    """
    from ticraft.cli.common import open_library
    from ticraft.errors import TicraftError

    if (prompt is None) == (from_image is None):
        raise TicraftError("give a prompt, or --from IMAGE to re-create an image (not both)")
    wh = parse_size(size)
    lib = open_library(library)
    if from_image is not None:
        images, prompt = _sample_from(from_image, model, lib, n=n, seed=seed, steps=steps, guidance=guidance,
                                      scheduler=scheduler, negative=negative, size=wh, device=device, dtype=dtype)
    else:
        from ticraft.generate.sample import SampleSpec, generate, random_seed

        backbone = _load_model(model, device, dtype)
        start = random_seed() if seed == -1 else (seed or 0)
        specs = [SampleSpec(prompt=prompt, negative=negative or "", seed=start + i, steps=steps, guidance=guidance,
                            scheduler=scheduler, width=wh[0] if wh else None, height=wh[1] if wh else None)
                 for i in range(n)]
        with _progress(f"sampling {n} image(s)") as callback:
            images = generate(backbone, specs, library=lib, batch_size=batch_size, callback=callback)
    if not is_main_process():
        return
    paths = _save_all(images, out)
    _print_paths(paths)
    if grid and len(images) > 1:
        _write_sample_grid(images, out)
    if attach:
        _attach(lib, prompt, images)


def _model_for(params: dict[str, Any], model: str | None) -> str | None:
    """--model wins; an image made by the shipped toy model names it; else the configured default."""
    if model is not None:
        return model
    return "toy" if params.get("model") == "toy" else None


def _sample_from(path: Path, model: str | None, lib: Any, *, n: int, seed: int | None, steps: int | None,
                 guidance: float | None, scheduler: str | None, negative: str | None, size: tuple[int, int] | None,
                 device: str | None, dtype: str | None) -> tuple[list["Image.Image"], str]:
    """``--from``: exact re-creation, or — when options override fields — new images from those settings."""
    from dataclasses import replace

    from ticraft.generate.pngmeta import read_parameters
    from ticraft.generate.sample import SampleSpec, generate, reproduce, spec_from_parameters

    params = read_parameters(path)
    base = spec_from_parameters(params)
    backbone = _load_model(_model_for(params, model), device, dtype)
    if seed == -1:
        from ticraft.generate.sample import random_seed

        seed = random_seed()
    overrides: dict[str, Any] = {k: v for k, v in dict(seed=seed, steps=steps, guidance=guidance, scheduler=scheduler,
                                                         negative=negative).items() if v is not None}
    if size is not None:
        overrides.update(width=size[0], height=size[1])
    if not overrides and n == 1:
        with _progress("re-creating") as callback:
            return [reproduce(backbone, params, library=lib, callback=callback)], base.prompt
    spec: SampleSpec = replace(base, **overrides)
    specs = [replace(spec, seed=spec.seed + i) for i in range(n)]
    with _progress(f"sampling {n} image(s)") as callback:
        return generate(backbone, specs, library=lib, callback=callback), base.prompt


def _write_sample_grid(images: list["Image.Image"], out: Path) -> None:
    import math

    from ticraft.imaging import make_grid
    from ticraft.generate.pngmeta import read_parameters, save_png

    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    cells = list(images) + [None] * (rows * cols - len(images))
    seeds = [f"seed {read_parameters(im)['seed']}" for im in images]
    g = make_grid(cells, rows=rows, cols=cols, title=read_parameters(images[0])["prompt"])
    g.info["parameters"] = images[0].info["parameters"]
    path = save_png(g, out / f"grid-{next_index(out) - 1:05d}.png")
    console.print(f"grid: {escape(str(path))} ({', '.join(seeds)})")


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
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    scheduler: SchedulerOption = None,
    size: SizeOption = None,
    out: OutOption = Path("samples"),
    name: Annotated[Optional[str], typer.Option("--name", help="Grid file name (default compose-NNNNN).")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Title printed above the grid.")] = None,
    batch_size: BatchOption = 8,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """A grid: subjects (rows) × templates and seeds (columns), seeds fixed per column so rows compare."""
    from ticraft.cli.common import open_library
    from ticraft.generate.pngmeta import save_png
    from ticraft.generate.sample import compose

    templates = template or ["a photo of {}", "a painting of {}"]
    wh = parse_size(size)
    lib = open_library(library)
    backbone = _load_model(model, device, dtype)
    extra = {"width": wh[0], "height": wh[1]} if wh else {}
    with _progress(f"composing {len(subjects)}×{len(templates) * seeds}") as callback:
        result = compose(backbone, subjects, templates, seeds=[seed + k for k in range(seeds)], negative=negative,
                         library=lib, batch_size=batch_size, callback=callback, title=title, steps=steps,
                         guidance=guidance, scheduler=scheduler, **extra)
    if not is_main_process():
        return
    stem = name or f"compose-{next_index(out):05d}"
    grid_path = save_png(result.grid, out / f"{stem}.png")
    for r, row in enumerate(result.images):
        for c, img in enumerate(row):
            save_png(img, out / stem / f"r{r:02d}-c{c:02d}.png")
    console.print(f"grid: {escape(str(grid_path))} ({len(subjects)} rows × {len(result.col_labels)} columns)")
    console.print(f"cells: {escape(str(out / stem))}/r??-c??.png")


# ----------------------------------------------------------------- info
def info_command(
    images: Annotated[list[Path], typer.Argument(help="PNG files made by ticraft (or A1111-style tools).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the parsed parameters as JSON.")] = False,
) -> None:
    """Show the generation parameters stored in images (prompt, seed, steps, sampler, model, concept hashes)."""
    from ticraft.errors import TicraftError
    from ticraft.imaging import GRID_CHUNK, read_png_text
    from ticraft.generate.pngmeta import PARAMETERS_KEY, parse_parameters

    failures = 0
    records = []
    for path in images:
        try:
            chunks = read_png_text(path)
        except TicraftError as exc:
            failures += 1
            err_console.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
            continue
        text = chunks.get(PARAMETERS_KEY)
        if text is None:
            failures += 1
            hint = " (it embeds a textual-inversion concept: `ticraft library import` reads it)" \
                if "sd-ti-embedding" in chunks else ""
            err_console.print(f"[red]{escape(str(path))}: no generation parameters{escape(hint)}[/]", soft_wrap=True)
            continue
        params = parse_parameters(text)
        grid = json.loads(chunks[GRID_CHUNK]) if GRID_CHUNK in chunks else None
        if as_json:
            rec = {k: v for k, v in params.items() if k not in ("text",)}
            rec.update(path=str(path), parameters=text, grid=grid)
            records.append(rec)
            continue
        console.rule(escape(str(path)))
        console.print(escape(text), highlight=False, soft_wrap=True)
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for key in ("seed", "steps", "cfg", "sampler", "size", "model", "model_hash", "denoising_strength", "edit"):
            if key in params:
                value = params[key]
                table.add_row(key, "x".join(map(str, value)) if key == "size" else str(value))
        for tok, h in params["concept_hashes"].items():
            table.add_row("concept", f"{escape(tok)}  {h}")
        if grid:
            table.add_row("grid", f"{grid['rows']}×{grid['cols']}")
            if grid.get("row_labels"):
                table.add_row("rows", escape(" | ".join(grid["row_labels"])))
            if grid.get("col_labels"):
                table.add_row("columns", escape(" | ".join(lbl.replace("\n", " ") for lbl in grid["col_labels"])))
        console.print(table)
    if as_json:
        console.print_json(json.dumps(records if len(images) > 1 else (records[0] if records else None), default=list))
    if failures:
        raise typer.Exit(1)


# ----------------------------------------------------------------- edit
def edit_command(
    image: Annotated[Path, typer.Argument(help="The picture to edit.")],
    prompt: Annotated[str, typer.Argument(help="What it should show, e.g. \"a photo of <cat-toy> on a sofa\".")],
    mask: Annotated[
        Optional[Path], typer.Option("--mask", help="White = region to change (inpainting); the rest is kept.")
    ] = None,
    strength: Annotated[
        Optional[float],
        typer.Option("--strength", min=0.0, max=1.0, help="0–1; default 0.75 (img2img) / 1.0 (with --mask)."),
    ] = None,
    n: Annotated[int, typer.Option("--num", "-n", min=1, help="How many variants (seeds seed, seed+1, …).")] = 1,
    seed: Annotated[int, typer.Option("--seed", "-s", help="First seed (-1: random).")] = 0,
    negative: NegativeOption = "",
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    scheduler: SchedulerOption = None,
    size: SizeOption = None,
    out: OutOption = Path("samples"),
    batch_size: BatchOption = 8,
    attach: AttachOption = False,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Edit an image with concepts: img2img, or inpainting inside --mask (the paper's downstream use)."""
    from ticraft.cli.common import open_library
    from ticraft.generate.edit import edit
    from ticraft.generate.sample import random_seed

    lib = open_library(library)
    backbone = _load_model(model, device, dtype)
    start = random_seed() if seed == -1 else seed
    with _progress(f"editing ({'inpaint' if mask else 'img2img'})") as callback:
        images = edit(backbone, image, prompt, mask=mask, strength=strength, negative=negative, seed=start, n=n,
                      steps=steps, guidance=guidance, scheduler=scheduler, size=parse_size(size), library=lib,
                      batch_size=batch_size, callback=callback)
    _print_paths(_save_all(images, out, suffix="-edit"))
    if attach:
        _attach(lib, prompt, images)
