"""`ticraft train-many DIR`: learn one new word per sub-folder of DIR, all in one run.

Only typer/rich at the top; the trainer (torch, diffusers) is imported inside the command.

Examples::

    ticraft train-many catalogue/ --model ~/models/sd15            # <red-mug>, <blue-vase>, … from folder names
    ticraft train-many styles/ --style --init painting --steps 800
    ticraft train-many catalogue/ --set lr_schedule=cosine --set warmup_steps=20   # any other training option
    ticraft train-many catalogue/ --save-every 100 --out runs/catalogue    # then, after an interruption:
    ticraft train-many catalogue/ --resume runs/catalogue --out runs/catalogue
    torchrun --nproc_per_node 4 -m ticraft.cli.main train-many catalogue/   # concepts split over 4 GPUs

``DIR/concepts.toml`` (optional) sets tokens, initializers, style/object, vector counts and seeds per
concept (see ``ticraft.training.many_specs``). A concept whose pictures cannot be read is reported at
the end and the others are trained and saved; the exit status is then 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from ticraft.cli.common import LibraryOption, ModelOption, console, err_console, open_library
from ticraft.cli.options import (
    Compile,
    DeterministicOption,
    DeviceOption,
    Precision,
    Preset,
    device_or_default,
    value,
)
from ticraft.cli.outputs import is_main_process
from ticraft.cli.progress import log_to, warnings_to
from ticraft.cli.train_options import given_options, learned_text, parse_sets, preset_hint, set_help
from ticraft.wording import counted

# TrainConfig fields with a typed flag below; `--set` reaches the rest, as in `ticraft train`.
TYPED_FIELDS = ("num_vectors", "steps", "batch_size", "lr", "resolution", "seed", "save_every", "early_stop",
                "deterministic", "previews", "device", "mixed_precision", "compile", "style")


def register(app: typer.Typer) -> None:
    """Add the `train-many` command to the main app."""
    app.command("train-many", no_args_is_help=True)(train_many_command)


def train_many_command(
    folder: Annotated[Path,
        typer.Argument(help="Folder with one sub-folder of pictures per concept (+ optional concepts.toml).")],
    model: ModelOption = None,
    init: Annotated[Optional[str],
        typer.Option("--init", "-i",
                     help="Initializer for every concept: one word or a few (default: each folder's name).")] = None,
    style: Annotated[bool,
        typer.Option("--style", help="Learn styles (style templates) unless concepts.toml says otherwise.")] = False,
    preset: Annotated[Optional[Preset],
        typer.Option(help="Starting recipe: fast (ours, the default), paper (Gal et al.), diffusers (its README). "
                     "With --resume: the checkpoint's.", show_default=False)] = None,
    vectors: Annotated[Optional[int],
        typer.Option("--vectors", "-n", help="Vectors per text encoder." + preset_hint("num_vectors"))] = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimiser steps (every concept).")] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", "-b", help="Samples per step per concept.")] = None,
    max_batch: Annotated[int, typer.Option(help="Most samples in one forward pass (concepts are packed whole).")] = 64,
    lr: Annotated[Optional[float],
        typer.Option(help="Learning rate (before --preset's batch scaling, if any).")] = None,
    resolution: Annotated[Optional[int],
        typer.Option(help="Training size in px (default: the model's native size).")] = None,
    seed: Annotated[Optional[int],
        typer.Option(help="Random seed (each concept's run is deterministic given it).")] = None,
    save_every: Annotated[Optional[int],
        typer.Option(metavar="K", help="Checkpoint all concepts every K steps (into --out).")] = None,
    early_stop: Annotated[bool,
        typer.Option("--early-stop", help="Stop each concept when its evaluation loss flattens (DVAR).")] = False,
    deterministic: DeterministicOption = False,
    previews: Annotated[Optional[int], typer.Option(help="Preview samples per concept at the end (0: none).")] = None,
    resume: Annotated[Optional[Path],
        typer.Option(help="train-many checkpoint file (or run folder) to continue, with its options: give only "
                     "those to change.")] = None,
    library: LibraryOption = None,
    no_library: Annotated[bool, typer.Option("--no-library", help="Do not add the results to the library.")] = False,
    tag: Annotated[Optional[list[str]],
        typer.Option("--tag", help="Library tag for every concept (repeatable).")] = None,
    overwrite: Annotated[bool,
        typer.Option("--overwrite", help="Replace library entries with the same tokens.")] = False,
    device: DeviceOption = None,
    precision: Annotated[Optional[Precision],
        typer.Option(help="Mixed precision (default auto: bf16 on CUDA, fp32 on CPU).")] = None,
    compile: Annotated[Optional[Compile],
        typer.Option("--compile", help="torch.compile the model's forward pass (GPU; default none).")] = None,
    out: Annotated[Optional[Path],
        typer.Option("--out", "-o",
                     help="Run folder: checkpoints; per concept its embedding file and loss curve.")] = None,
    sets: Annotated[
        Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help=set_help(TYPED_FIELDS))
    ] = None,
) -> None:
    """Learn one new word per sub-folder of FOLDER in a single run (textual inversion, many concepts at once)."""
    import ticraft.training.many_api as many_api

    options: dict[str, Any] = {
        "num_vectors": vectors, "steps": steps, "batch_size": batch, "lr": lr, "resolution": resolution,
        "seed": seed, "save_every": save_every, "early_stop": early_stop or None,
        "deterministic": deterministic or None, "previews": previews,
        "device": device, "mixed_precision": value(precision), "compile": value(compile),
    }
    # concepts.toml's per-concept keys (init, style, vectors, seed) still win over these for their concept
    options.update(parse_sets(sets or [], given={**options, "style": style or None}))
    style_value = options.pop("style", style or None)  # --style or --set style=…: train_many's own argument
    options["device"] = device_or_default(options["device"])  # --device / --set device > config > auto
    options = given_options(options, sets or [])  # a flag left out: the preset's value, resumed the checkpoint's
    if out is None and save_every:
        out = Path("ticraft-runs") / (folder.resolve().name or "train-many")
        console.print(f"run folder: {escape(str(out))}")
    lib = None if no_library else open_library(library)
    main = is_main_process()
    with _Progress(enabled=main) as progress, warnings_to(err_console), log_to(console, main):
        result = many_api.train_many(
            folder, model, init=init, style=style_value, preset=value(preset), callback=progress.callback,
            library=lib, tags=tag or (), overwrite=overwrite, output_dir=out, resume=resume, max_batch=max_batch,
            **options,
        )
    if not main:
        return
    for token, concept in result.concepts.items():
        meta = concept.meta
        last = meta["loss_curve"][-1][1] if meta.get("loss_curve") else float("nan")
        note = " [yellow](stopped early)[/]" if meta["stopped"] == "early_stop" else ""
        console.print(f"[bold green]learned[/] {escape(token)}: {learned_text(concept)}, "
                      f"{meta['steps']} steps, final loss {last:.4f}{note}")
    for name, why in result.failed.items():
        err_console.print(f"[red]failed[/] {escape(name)}: {escape(why)}")
    console.print(f"{len(result.concepts)} learned, {len(result.failed)} failed in {result.wall_seconds:.1f} s"
                  + (f"; added to the library {escape(str(lib.root))}" if lib is not None and result.concepts else ""))
    if result.failed:
        raise typer.Exit(1)


class _Progress:
    """A Rich progress bar fed by the group's callback (step, total, losses by token)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]training[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
                TimeElapsedColumn(), console=console, transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def callback(self, step: int, total: int, losses: dict[str, float | None]) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task("train-many", total=total, note="", completed=0)
        read = [v for v in losses.values() if v is not None]
        fields = {"note": f"{counted(len(losses), 'concept')}, mean loss {sum(read) / len(read):.4f}"} if read else {}
        self._progress.update(self._task, completed=step, **fields)
