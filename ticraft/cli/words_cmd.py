"""`ticraft words "<concept>"`: which K real words mean the same as a learned concept (PEZ hard prompts).

Only typer/rich at the top; torch and the models load inside the command.

Examples::

    ticraft words "<zorb>" --length 4 --steps 200
    ticraft words "<zorb>" --length 8 --no-judge --json words.json
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ticraft.cli.common import console, load_model, open_library
from ticraft.cli.lookup import write_json
from ticraft.cli.options import DeviceOption, DtypeOption, JsonOutOption, LibraryOption, ModelOption


def register(app: typer.Typer) -> None:
    """Add `words` to the main app."""
    app.command("words")(words_command)


def words_command(
    concept: Annotated[str, typer.Argument(help="A library concept, e.g. \"<cat-toy>\".")],
    length: Annotated[int, typer.Option("--length", "-k", help="How many words (K).")] = 4,
    steps: Annotated[int, typer.Option("--steps", help="Projected-gradient steps.")] = 200,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate of the continuous vectors (PEZ: 0.1).")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, help="Seed of the starting words and samples.")] = 0,
    use_judge: Annotated[bool, typer.Option("--judge/--no-judge",
                                        help="Toy model: judge 'a photo of a <words>' beside the concept.")] = True,
    n: Annotated[int, typer.Option("--n", min=1, help="Samples per prompt for the judge.")] = 8,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    json_out: JsonOutOption = None,
) -> None:
    """Find K real vocabulary words whose prompt encodes like the concept (PEZ, arXiv 2302.03668).

    Prints the words, each word's nearest-token check (cosine of the optimised vector to the chosen token and to
    the runner-up), and on the toy model the judge's reconstruction of the words-only prompt next to the
    concept's own (identity read from the concept's training images in the library when they are there).
    """
    from ticraft.analysis.words import hard_prompt, judge_words

    lib = open_library(library)
    target = lib.get(concept)
    bb = load_model(model, device, dtype)
    result = hard_prompt(bb, target, length=length, steps=steps, lr=lr, seed=seed)
    console.print(f"[bold]{escape(target.token)}[/] ≈ [bold green]{escape(result.text)}[/]  "
                  f"[dim](loss {result.loss:.4f}, start {result.initial_loss:.4f}"
                  f"{'' if result.retokenizes else '; the text tokenizes differently'})[/]")
    table = Table(title="nearest-token check", title_justify="left")
    for col in ("#", "word", "cos", "runner-up", "cos "):
        table.add_column(col)
    for i, c in enumerate(result.checks, 1):
        table.add_row(str(i), escape(c.token), f"{c.cosine:.3f}", escape(c.runner_up), f"{c.runner_up_cosine:.3f}")
    console.print(table)
    data: dict[str, Any] = result.to_dict()
    if use_judge and bb.family == "toy":
        refs = _references(lib, target.token)
        scores = judge_words(bb, target, result.text, references=refs, n=n, seed=seed)
        console.print(f"toy judge, '{escape(scores['template'].format('…'))}', {n} samples, identity from "
                      f"{scores['identity_from']} {scores['identity']}: reconstruction — concept "
                      f"{scores['concept']:.0%}, words {scores['words']:.0%}")
        data["judge"] = scores
    write_json(json_out, data)


def _references(lib: Any, token: str) -> list[Any] | None:
    """The concept's training images in the library (None when it keeps none)."""
    from PIL import Image

    paths = lib.images(token)
    out = [Image.open(p).convert("RGB") for p in paths]
    return out or None
