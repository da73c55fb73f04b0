"""`ticraft train IMAGES_DIR --token "<my-thing>" --init "toy"`: learn a new word from a few pictures.

Only typer/rich at the top; the trainer (torch, diffusers) is imported inside the command.

Examples::

    ticraft train photos/ --token "<cat-toy>" --init "toy"                       # toy model, fast preset
    ticraft train photos/ --token "<cat-toy>" --init "toy cat" --vectors 4 --steps 800
    ticraft train paintings/ --token "<my-style>" --init "painting" --style --model ~/models/sd15
    ticraft train photos/ --token "<cat-toy>" --init toy --save-every 100 --out runs/cat   # then:
    ticraft train photos/ --token "<cat-toy>" --init toy --resume runs/cat --out runs/cat
    torchrun --nproc_per_node 2 -m ticraft.cli.main train photos/ --token "<cat-toy>" --init toy   # data parallel
"""

from __future__ import annotations

import os
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from ticraft.cli.common import LibraryOption, ModelOption, console, err_console


class Preset(str, Enum):
    fast = "fast"
    paper = "paper"
    diffusers = "diffusers"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Compile(str, Enum):
    none = "none"
    default = "default"
    reduce_overhead = "reduce-overhead"
    max_autotune = "max-autotune"


class Precision(str, Enum):
    auto = "auto"
    no = "no"
    bf16 = "bf16"
    fp16 = "fp16"


def register(app: typer.Typer) -> None:
    """Add the `train` command to the main app."""
    app.command("train", no_args_is_help=True)(train_command)


def train_command(
    images_dir: Annotated[Path, typer.Argument(help="Folder of training images (img.txt next to img.png = its caption).")],
    token: Annotated[str, typer.Option("--token", "-t", help="The new placeholder, e.g. \"<cat-toy>\".")],
    init: Annotated[str, typer.Option("--init", "-i", help="Initializer word(s), e.g. \"toy\" or \"toy cat\".")],
    model: ModelOption = None,
    preset: Annotated[Preset, typer.Option(help="Starting recipe: fast (ours), paper (Gal et al.), diffusers (its README).")] = Preset.fast,
    vectors: Annotated[Optional[int], typer.Option("--vectors", "-n", help="Vectors per text encoder.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimiser steps.")] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", "-b", help="(image, t, noise) samples per step, all processes together.")] = None,
    grad_accum: Annotated[Optional[int], typer.Option(help="Forward passes per optimiser step.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (before --preset's batch scaling, if any).")] = None,
    resolution: Annotated[Optional[int], typer.Option(help="Training size in px (default: the model's native size).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (runs are deterministic given it).")] = None,
    progressive: Annotated[Optional[int], typer.Option(metavar="K", help="Start with 1 vector, add one every K steps.")] = None,
    reg: Annotated[Optional[float], typer.Option(metavar="W", help="L2 pull towards the initializer embedding.")] = None,
    per_image: Annotated[bool, typer.Option("--per-image", help="Extra token per image (\"a photo of S* with S_i\"), dropped at the end.")] = False,
    style: Annotated[bool, typer.Option("--style", help="Learn a style (style templates) instead of an object.")] = False,
    captions: Annotated[bool, typer.Option("--captions", help="Use each image's caption file as its prompt.")] = False,
    mask: Annotated[bool, typer.Option("--mask", help="Ignore transparent pixels (alpha-mask loss).")] = False,
    save_every: Annotated[Optional[int], typer.Option(metavar="K", help="Checkpoint every K steps (into --out).")] = None,
    preview_every: Annotated[Optional[int], typer.Option(metavar="K", help="Preview images every K steps (into --out).")] = None,
    early_stop: Annotated[bool, typer.Option("--early-stop", help="Stop when a fixed-batch evaluation loss flattens (DVAR).")] = False,
    resume: Annotated[Optional[Path], typer.Option(help="Checkpoint file (or run folder) to continue.")] = None,
    library: LibraryOption = None,
    no_library: Annotated[bool, typer.Option("--no-library", help="Do not add the result to the library.")] = False,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", help="Library tag (repeatable).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a library entry with the same token.")] = False,
    device: Annotated[Device, typer.Option(help="Where to train.")] = Device.auto,
    precision: Annotated[Precision, typer.Option(help="Mixed precision (auto: bf16 on CUDA, fp32 on CPU).")] = Precision.auto,
    compile: Annotated[Compile, typer.Option("--compile", help="torch.compile the loss (GPU).")] = Compile.none,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder: checkpoints, previews, embedding file, loss curve.")] = None,
) -> None:
    """Learn a new word for a frozen text-to-image model from a few images (textual inversion)."""
    import ticraft.training.api as api

    options: dict[str, Any] = {
        "num_vectors": vectors, "steps": steps, "batch_size": batch, "grad_accum": grad_accum, "lr": lr,
        "resolution": resolution, "seed": seed, "progressive": progressive, "reg_weight": reg,
        "per_image": per_image or None, "style": style or None, "captions": captions or None, "mask": mask or None,
        "save_every": save_every, "preview_every": preview_every, "early_stop": early_stop or None,
        "device": device.value, "mixed_precision": precision.value, "compile": compile.value,
    }
    api.check_token(token)
    if out is None and (save_every or preview_every):
        out = Path("ticraft-runs") / _slug(token)
        console.print(f"run folder: {escape(str(out))}")
    lib = None
    if not no_library:
        from ticraft.cli.common import open_library

        lib = open_library(library)
    main = int(os.environ.get("RANK", "0")) == 0

    with _Progress(enabled=main) as progress, _warnings_to(err_console):
        concept = api.train(
            images_dir, token, init, model,
            preset=preset.value, callback=progress.callback, library=lib, tags=tag or (), overwrite=overwrite,
            output_dir=out, resume=resume, **options,
        )
    if not main:
        return
    meta = concept.meta
    last = meta["loss_curve"][-1][1] if meta.get("loss_curve") else float("nan")
    dims = ", ".join(f"{k} {v}" for k, v in concept.dims.items())
    console.print(
        f"[bold green]learned[/] {escape(concept.token)}: {concept.num_vectors} vector(s) ({dims}), "
        f"{meta['steps']} steps, final loss {last:.4f}" + (" [yellow](stopped early)[/]" if meta["stopped"] == "early_stop" else "")
    )
    if lib is not None:
        console.print(f"added to the library {escape(str(lib.root))}")
    if out is not None:
        console.print(f"run folder: {escape(str(out))}")


def _slug(token: str) -> str:
    from ticraft.library import slugify

    return slugify(token)


class _Progress:
    """A Rich progress bar fed by the trainer's callback (step, total, loss, vectors)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]training[/]"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=console, transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def callback(self, step: int, total: int, loss: float | None, vectors: Any) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task("train", total=total, loss="…", completed=0)
        fields = {"loss": f"{loss:.4f}"} if loss is not None else {}
        self._progress.update(self._task, completed=step, **fields)


class _warnings_to:
    """Show Python warnings (e.g. 'upscaling small images') as one yellow line each."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __enter__(self) -> None:
        self._saved = warnings.showwarning

        def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
            self.target.print(f"[yellow]warning:[/] {escape(str(message))}")

        warnings.showwarning = show

    def __exit__(self, *exc: Any) -> None:
        warnings.showwarning = self._saved
