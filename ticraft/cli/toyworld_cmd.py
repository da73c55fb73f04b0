"""`ticraft toyworld`: train the embedded base model, render the toy world's images."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

app = typer.Typer(help="The toy world: its renderer, hidden words and the embedded base model.", no_args_is_help=True)


@app.command("train-base")
def train_base_cmd(
    out: Path = typer.Option(None, "--out", help="Output pipeline folder (default: the package's weights folder)."),
    work: Path = typer.Option(None, "--work", help="Checkpoint folder (default: ./.ticraft-cache/toyworld-base)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Seed of data, initialisation and every training draw."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from checkpoints in the work folder."),
    preset: str = typer.Option("cpu", "--preset", help="cpu (~60 min on 2 cores) | gpu (more data, batch 512)."),
    vae_steps: int = typer.Option(None, "--vae-steps", min=1, help="Stage 1 (VAE) steps (preset)"),
    decoder_steps: int = typer.Option(None, "--decoder-steps", min=0, help="Stage 1b (decoder) steps (preset)"),
    unet_steps: int = typer.Option(None, "--unet-steps", min=1, help="Stage 2 (text encoder + UNet) steps (preset)"),
    batch: int = typer.Option(None, "--batch", min=1, help="Stage 2 batch size (preset)"),
    n_images: int = typer.Option(None, "--images", min=100, help="Training renders (preset)"),
    time_budget: float = typer.Option(
        None,
        "--time-budget",
        min=1,
        help="Fit stage 2 to this many seconds (steps lowered after warmup); default 2900 for cpu (about 1 h in "
        "all on 2 cores), none for gpu; inf runs every planned step.",
    ),
    fixture: Path = typer.Option(None, "--fixture", help="Also write the hidden words' true rows (safetensors)."),
) -> None:
    """Train the toy base model (VAE, then text encoder + UNet) and save it as a diffusers pipeline folder."""
    from ticraft.toyworld.base import PRESET_BUDGETS, WEIGHTS_DIR, BaseConfig, train_base

    target = out or WEIGHTS_DIR
    given = {
        "vae_steps": vae_steps,
        "decoder_steps": decoder_steps,
        "unet_steps": unet_steps,
        "unet_batch": batch,
        "n_images": n_images,
    }
    try:
        cfg = BaseConfig.preset(preset, seed=seed, **{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--preset") from exc
    if time_budget is None:
        time_budget = PRESET_BUDGETS[preset]
    try:
        with _progress() as progress:
            folder = train_base(
                out=target, cfg=cfg, work=work, resume=resume, device=device, progress=progress, fixture=fixture,
                time_budget_s=time_budget,
            )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"saved the toy pipeline to {folder}")


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int, float], None]]:
    """A Rich bar per stage in a terminal; in a log file or a pipe (where a redrawn bar prints nothing useful) a
    plain ``elapsed stage step/total loss`` line at most every 10 s and at each stage's end."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    if sys.stdout.isatty():
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(),
        ) as bar:  # fmt: skip
            tasks: dict[str, TaskID] = {}

            def update(stage: str, step: int, total: int, loss: float) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total, loss=0.0)
                bar.update(tasks[stage], completed=step, total=total, loss=loss)  # total shrinks under a budget

            yield update
        return
    t0, last = time.perf_counter(), [-10.0]

    def line(stage: str, step: int, total: int, loss: float) -> None:
        now = time.perf_counter() - t0
        if now - last[0] >= 10.0 or step >= total:
            last[0] = now
            tail = "" if stage == "data" else f"  loss {loss:.4f}"  # the data stage reports seconds, not a loss
            typer.echo(f"{now:7.1f}s  {stage:8s} {step}/{total}{tail}")
            sys.stdout.flush()  # a log file is block-buffered: show each line as it happens

    yield line


@app.command("render")
def render_cmd(
    what: str = typer.Argument(
        ...,
        help="A hidden word (e.g. zorb, doctor, glimmic) or an attribute spec such as "
        "'shape=star,colour=red,texture=striped,background=blue,style=outline'.",
    ),
    out: Path = typer.Option(Path("toyworld_images"), "--out", "-o", help="Folder for the PNGs."),
    n: int = typer.Option(8, "--n", "-n", min=1, help="How many images."),
    seed: int = typer.Option(0, "--seed", "-s", help="Seed for the unspecified attributes."),
    scale: int = typer.Option(1, "--scale", min=1, max=16, help="Upscale factor (nearest) for viewing."),
) -> None:
    """Render N images of a hidden concept or attribute spec into a folder (with a captions.txt)."""
    import numpy as np
    from PIL import Image

    from ticraft.toyworld.render import caption, render
    from ticraft.toyworld.vocab import concept_attributes

    try:
        attrs_list = concept_attributes(what, n, np.random.default_rng(seed))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="WHAT") from exc
    out.mkdir(parents=True, exist_ok=True)
    cap_rng = np.random.default_rng([seed, 1])
    lines = []
    for i, attrs in enumerate(attrs_list):
        img = render(attrs)
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
        name = f"{i:03d}.png"
        img.save(out / name)
        lines.append(f"{name}\t{caption(attrs, cap_rng)}")
    (out / "captions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    typer.echo(f"wrote {n} images of {what!r} to {out}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="toyworld")
