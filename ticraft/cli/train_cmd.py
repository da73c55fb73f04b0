"""`ticraft train IMAGES_DIR --token "<my-thing>" --init "toy"`: learn a new word from a few pictures.

Only typer/rich (and the light ``ticraft.training.config``, for the presets' values in --help) at the top;
the trainer (torch, diffusers) is imported inside the command.

Examples::

    ticraft train photos/ --token "<cat-toy>" --init "toy"                       # toy model, fast preset
    ticraft train photos/ --token "<cat-toy>" --init "toy cat" --vectors 4 --steps 800
    ticraft train paintings/ --token "<my-style>" --init "painting" --style --model ~/models/sd15
    ticraft train photos/ --token "<cat-toy>" --init toy --lr-schedule constant --warmup 0 --optimizer adamw \\
        --weight-decay 0.01 --no-flip --previews 0 --set max_grad_norm=1.0
    ticraft train photos/ --token "<cat-toy>" --init toy --save-every 100 --out runs/cat   # then:
    ticraft train photos/ --token "<cat-toy>" --init toy --resume runs/cat --out runs/cat
    torchrun --nproc_per_node 2 -m ticraft.cli.main train photos/ --token "<cat-toy>" --init toy   # data parallel
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from ticraft.cli.common import console, err_console, open_library
from ticraft.cli.options import (
    Compile,
    DeterministicOption,
    DeviceOption,
    DtypeOption,
    Encoders,
    LibraryOption,
    LrSchedule,
    Method,
    ModelOption,
    Optimizer,
    Precision,
    Preset,
    device_or_default,
    value,
)
from ticraft.cli.outputs import is_main_process
from ticraft.cli.progress import TrainProgress, log_to, warnings_to
from ticraft.cli.train_options import given_options, learned_text, parse_sets, preset_hint, set_help

# TrainConfig fields with a typed flag below (the rest go through --set; see train_options).
TYPED_FIELDS = (
    "num_vectors",
    "steps",
    "batch_size",
    "grad_accum",
    "lr",
    "scale_lr",
    "lr_schedule",
    "warmup_steps",
    "optimizer",
    "weight_decay",
    "resolution",
    "flip",
    "seed",
    "progressive",
    "reg_weight",
    "init_search",
    "encoders",
    "method",
    "norm",
    "per_image",
    "style",
    "captions",
    "mask",
    "save_every",
    "preview_every",
    "previews",
    "early_stop",
    "device",
    "mixed_precision",
    "weight_dtype",
    "compile",
)
P = preset_hint


def register(app: typer.Typer) -> None:
    """Add the `train` command to the main app."""
    app.command("train", no_args_is_help=True)(train_command)


def train_command(
    images_dir: Annotated[
        Path, typer.Argument(help="Folder of training images (img.txt next to img.png = its caption).")
    ],
    token: Annotated[str, typer.Option("--token", "-t", help='The new placeholder, e.g. "<cat-toy>".')],
    init: Annotated[str, typer.Option("--init", "-i", help='Initializer: one word or a few, e.g. "toy" or "toy cat".')],
    model: ModelOption = None,
    preset: Annotated[
        Optional[Preset],
        typer.Option(
            help="Starting recipe: fast (ours, the default), paper (Gal et al.), diffusers (its README); "
            "every option below overrides it. With --resume: the checkpoint's.",
            show_default=False,
        ),
    ] = None,
    vectors: Annotated[
        Optional[int], typer.Option("--vectors", "-n", help="Vectors per text encoder." + P("num_vectors"))
    ] = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimiser steps." + P("steps"))] = None,
    batch: Annotated[
        Optional[int],
        typer.Option(
            "--batch",
            "-b",
            help="(image, t, noise) samples per forward pass, all processes together." + P("batch_size"),
        ),
    ] = None,
    grad_accum: Annotated[
        Optional[int], typer.Option(help="Forward passes per optimiser step." + P("grad_accum"))
    ] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (before --scale-lr)." + P("lr"))] = None,
    scale_lr: Annotated[
        Optional[bool],
        typer.Option(
            "--scale-lr/--no-scale-lr", help="Multiply --lr by batch × grad-accum." + P("scale_lr"), show_default=False
        ),
    ] = None,
    lr_schedule: Annotated[
        Optional[LrSchedule], typer.Option(help="Learning-rate decay after the warm-up." + P("lr_schedule"))
    ] = None,
    warmup: Annotated[
        Optional[int], typer.Option(metavar="STEPS", help="Linear learning-rate warm-up steps." + P("warmup_steps"))
    ] = None,
    optimizer: Annotated[
        Optional[Optimizer], typer.Option(help="adam (L2 weight decay) or adamw (decoupled)." + P("optimizer"))
    ] = None,
    weight_decay: Annotated[
        Optional[float], typer.Option(help="Weight decay of the learned vectors." + P("weight_decay"))
    ] = None,
    resolution: Annotated[
        Optional[int], typer.Option(help="Training size in px (default: the model's native size).")
    ] = None,
    flip: Annotated[
        Optional[bool],
        typer.Option("--flip/--no-flip", help="Also train on mirrored pictures." + P("flip"), show_default=False),
    ] = None,
    seed: Annotated[
        Optional[int],
        typer.Option("--seed", "-s", help="Random seed (bitwise repeatable with --deterministic)." + P("seed")),
    ] = None,
    progressive: Annotated[
        Optional[int],
        typer.Option(metavar="K", help="Start with 1 vector, add one every K steps (the last joins before the end)."),
    ] = None,
    reg: Annotated[
        Optional[float], typer.Option(metavar="W", help="L2 pull towards the start (--init, or what --init-search "
                                      "chose)." + P("reg_weight"))
    ] = None,
    init_search: Annotated[
        Optional[int],
        typer.Option(metavar="WORDS", help="Start from up to WORDS vocabulary words that denoise the pictures best, "
                     "searched from --init at the first step (0: start from --init as given)." + P("init_search")),
    ] = None,
    encoders: Annotated[
        Optional[Encoders],
        typer.Option(help="SD3/Flux: learn in every text encoder (all), only T5 or only CLIP; the others keep the "
                     "initializer (--set weighting_scheme=... picks the timestep density)." + P("encoders")),
    ] = None,
    method: Annotated[
        Optional[Method],
        typer.Option(help="plain (the paper's), xti (one vector set per UNet cross-attention layer, P+) or directional "
                     "(vectors keep a word-like norm, only the direction is learned)." + P("method")),
    ] = None,
    norm: Annotated[
        Optional[float], typer.Option(metavar="N", help="directional: the vectors' norm (default: the vocabulary's "
                                      "median row norm).")
    ] = None,
    per_image: Annotated[
        bool, typer.Option("--per-image", help='Extra token per image ("a photo of S* with S_i"), dropped at the end.')
    ] = False,
    style: Annotated[
        bool, typer.Option("--style", help="Learn a style (style templates) instead of an object.")
    ] = False,
    captions: Annotated[bool, typer.Option("--captions", help="Use each image's caption file as its prompt.")] = False,
    mask: Annotated[bool, typer.Option("--mask", help="Ignore transparent pixels (alpha-mask loss).")] = False,
    save_every: Annotated[
        Optional[int], typer.Option(metavar="K", help="Checkpoint every K steps (into --out).")
    ] = None,
    preview_every: Annotated[
        Optional[int], typer.Option(metavar="K", help="Preview images every K steps (into --out).")
    ] = None,
    previews: Annotated[
        Optional[int],
        typer.Option(
            metavar="N",
            min=0,
            help="Preview images per preview and at the end (0: none; the result is still saved)." + P("previews"),
        ),
    ] = None,
    early_stop: Annotated[
        bool, typer.Option("--early-stop", help="Stop when a fixed-batch evaluation loss flattens (DVAR).")
    ] = False,
    deterministic: DeterministicOption = False,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help=set_help(TYPED_FIELDS))
    ] = None,
    resume: Annotated[
        Optional[Path],
        typer.Option(help="Checkpoint file (or run folder) to continue, with its options: give only those to change "
                     "(e.g. --steps; a different --vectors, --batch or --seed is refused)."),
    ] = None,
    library: LibraryOption = None,
    no_library: Annotated[bool, typer.Option("--no-library", help="Do not add the result to the library.")] = False,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", help="Library tag (repeatable).")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a library entry with the same token.")
    ] = False,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    precision: Annotated[
        Optional[Precision], typer.Option(help="Mixed precision (default auto: bf16 on CUDA, fp32 on CPU).")
    ] = None,
    compile: Annotated[
        Optional[Compile], typer.Option("--compile", help="torch.compile the loss (GPU; default none).")
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Run folder: checkpoints, previews, embedding file, loss curve."),
    ] = None,
) -> None:
    """Learn a new word for a frozen text-to-image model from a few images (textual inversion)."""
    options = train_options(
        vectors=vectors,
        steps=steps,
        batch=batch,
        grad_accum=grad_accum,
        lr=lr,
        scale_lr=scale_lr,
        lr_schedule=lr_schedule,
        warmup=warmup,
        optimizer=optimizer,
        weight_decay=weight_decay,
        resolution=resolution,
        flip=flip,
        seed=seed,
        progressive=progressive,
        reg=reg,
        init_search=init_search,
        encoders=encoders,
        method=method,
        norm=norm,
        per_image=per_image,
        style=style,
        captions=captions,
        mask=mask,
        save_every=save_every,
        preview_every=preview_every,
        previews=previews,
        early_stop=early_stop,
        deterministic=deterministic,
        device=device,
        dtype=dtype,
        precision=precision,
        compile=compile,
        sets=set_ or [],
    )
    import ticraft.training.api as api
    from ticraft.training.config import TrainConfig

    options = given_options(options, set_ or [])
    if resume is None:  # resumed, the options apply on the checkpoint's (checked when it is read, before the model)
        TrainConfig.from_options(preset=value(preset), **options)  # every bad option fails here, before any loading
    api.check_token(token)
    if out is None and (options.get("save_every") or options.get("preview_every")):
        out = Path("ticraft-runs") / _slug(token)
        console.print(f"run folder: {escape(str(out))}")
    lib = None if no_library else open_library(library)
    main = is_main_process()

    with TrainProgress(enabled=main) as progress, warnings_to(err_console), log_to(console, main):
        concept = api.train(
            images_dir,
            token,
            init,
            model,
            preset=value(preset),
            callback=progress.callback,
            library=lib,
            tags=tag or (),
            overwrite=overwrite,
            output_dir=out,
            resume=resume,
            **options,
        )
    if not main:
        return
    meta = concept.meta
    last = meta["loss_curve"][-1][1] if meta.get("loss_curve") else float("nan")
    dims = ", ".join(f"{k} {v}" for k, v in concept.dims.items())
    console.print(
        f"[bold green]learned[/] {escape(concept.token)}: {learned_text(concept)} ({dims}), "
        f"{meta['steps']} steps, final loss {last:.4f}"
        + (" [yellow](stopped early)[/]" if meta["stopped"] == "early_stop" else "")
    )
    if lib is not None:
        console.print(f"added to the library {escape(str(lib.root))}")
    if out is not None:
        console.print(f"run folder: {escape(str(out))}")


def train_options(*, sets: list[str], **flags: Any) -> dict[str, Any]:
    """The command's flags as TrainConfig fields (``None``: keep the preset's value), plus ``--set`` items.

    >>> opts = train_options(sets=["crops=2"], steps=5, warmup=0, flip=False, device=None, per_image=False)
    >>> opts["steps"], opts["warmup_steps"], opts["flip"], opts["crops"], opts["per_image"]
    (5, 0, False, 2, None)
    """
    f = flags.get
    options: dict[str, Any] = {
        "num_vectors": f("vectors"),
        "steps": f("steps"),
        "batch_size": f("batch"),
        "grad_accum": f("grad_accum"),
        "lr": f("lr"),
        "scale_lr": f("scale_lr"),
        "lr_schedule": value(f("lr_schedule")),
        "warmup_steps": f("warmup"),
        "optimizer": value(f("optimizer")),
        "weight_decay": f("weight_decay"),
        "resolution": f("resolution"),
        "flip": f("flip"),
        "seed": f("seed"),
        "progressive": f("progressive"),
        "reg_weight": f("reg"),
        "init_search": f("init_search"),
        "encoders": value(f("encoders")),
        "method": value(f("method")),
        "norm": f("norm"),
        "save_every": f("save_every"),
        "preview_every": f("preview_every"),
        "previews": f("previews"),
        "weight_dtype": value(f("dtype")),
        # switches that only turn something on: off means "as the preset says"
        "per_image": f("per_image") or None,
        "style": f("style") or None,
        "captions": f("captions") or None,
        "mask": f("mask") or None,
        "early_stop": f("early_stop") or None,
        "deterministic": f("deterministic") or None,
        "device": f("device"),
        "mixed_precision": value(f("precision")),
        "compile": value(f("compile")),
    }
    options.update(parse_sets(sets, given=options))
    options["device"] = device_or_default(options["device"])  # --device > config > auto
    return options


def _slug(token: str) -> str:
    from ticraft.library import slugify

    return slugify(token)
