"""`ticraft demo`: learn a hidden toy-world object end to end and show what was learned."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ticraft.cli.common import console


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo writes.")] = Path(
        "ticraft-demo"
    ),
    word: Annotated[str, typer.Option(help="Hidden toy-world object to learn (zorb, blicket).")] = "zorb",
    steps: Annotated[int | None, typer.Option(help="Training steps (default: the fast preset's; ~0.5 s per step "
                                                    "of 16 samples on one CPU core).")] = None,
    images: Annotated[int, typer.Option("--images", "-n", help="Training pictures to render.")] = 4,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed for pictures, training and samples.")] = 0,
) -> None:
    """Teach the toy model a word it has never seen, then compose, interpolate, inspect and score it."""
    from rich.table import Table

    from ticraft.cli.progress import TrainProgress
    from ticraft.demo import run_demo

    def say(text: str) -> None:
        console.print(f"[bold cyan]•[/] {escape(text)}")

    with TrainProgress() as progress:
        result = run_demo(out, word=word, n_images=images, steps=steps, seed=seed, callback=progress.callback, say=say)

    n = len(result.vector_percentiles)
    of = f" (the mean of its {n} vectors)" if n else ""
    table = Table(title=f"nearest vocabulary tokens of {escape(result.token)}{of}", show_lines=False)
    table.add_column("token")
    table.add_column("cosine", justify="right")
    for tok, score in result.neighbors:
        table.add_row(escape(tok), f"{score:.3f}")
    console.print(table)
    if n:
        each = ", ".join(f"{p:.0f}" for p in result.vector_percentiles)
        console.print(f"the learned vectors' norms are at the {each}th percentiles of the vocabulary's norms "
                      f"(their mean at the {result.norm_percentile:.0f}th)")
    else:
        console.print(f"the learned vector's norm is at the {result.norm_percentile:.0f}th percentile of the "
                      "vocabulary's norms")
    console.print(f"hidden word: {escape(result.hidden_word)}")
    console.print(
        f"[bold]toy judge[/]: reconstruction {result.reconstruction:.0%}, editability {result.editability:.0%}"
    )
    for prompt, score in result.edits.items():
        console.print(f"   {escape(prompt)}: {score:.0%}")
    console.print("\n[bold]written[/]")
    for label, path in [
        ("training pictures", result.images[0].parent),
        ("library", result.library),
        ("composition grid", result.grid),
        ("interpolation strip", result.strip),
        ("judge samples", result.out / "eval.png"),
        ("summary", result.out / "demo.json"),
    ]:
        console.print(f"  {label:20s} {escape(str(path))}")
    console.print(
        f"\nnext: [bold]ticraft library list --library {escape(str(result.library))}[/], "
        f"[bold]ticraft tui --library {escape(str(result.library))}[/]  ({result.seconds:.0f} s)"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
