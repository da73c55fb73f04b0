"""Analysis commands on the embedding space itself: `neighbors` and `mix` (see also `views_cmd`, `probe_cmd`).

Only typer/rich at the top; torch and the models load inside the commands.

Examples::

    ticraft neighbors "<cat-toy>" -k 10 --per-vector
    ticraft neighbors circle --metric l2
    ticraft mix "0.7*<cat-toy> + 0.3*painting - 0.2*blurry" --as "<cat-paint>"
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ticraft.cli.common import console, load_model, open_library
from ticraft.cli.lookup import resolve_concept, resolve_without_model, write_json
from ticraft.cli.options import DeviceOption, DtypeOption, JsonOutOption, LibraryOption, Metric, ModelOption, Words


def register(app: typer.Typer) -> None:
    """Add `neighbors` and `mix` to the main app."""
    from ticraft.cli.expression_arg import ExpressionCommand

    app.command("neighbors")(neighbors_command)
    app.command("mix", cls=ExpressionCommand)(mix_command)  # "-<zorb>" is an expression, not an option


# --------------------------------------------------------------------------------------------------- neighbors
#: Characters one vector's column of the neighbours table needs ("layer 6 v2", "norm 0.123 · p99", "token 0.912").
NEIGHBOR_COLUMN = 20


def neighbors_command(
    query: Annotated[str, typer.Argument(help="A library concept (<token>), an embedding file, or a vocabulary word.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Neighbours per vector.")] = 20,
    metric: Annotated[Metric, typer.Option("--metric", help="cosine (similarity) or l2 (distance).")] = Metric.cosine,
    per_vector: Annotated[
        bool, typer.Option("--per-vector", help="Also list neighbours of each vector, not only the mean.")
    ] = False,
    concepts: Annotated[int, typer.Option("--concepts", min=0, help="Nearest library concepts to list.")] = 5,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    json_out: JsonOutOption = None,
) -> None:
    """Nearest vocabulary tokens of a concept or word, and the nearest library concepts.

    Lists the k nearest tokens of the mean vector (and of each vector with --per-vector), each vector's norm as a
    percentile of the vocabulary's norms (learned vectors often sit far off the word manifold), and the library
    concepts closest to it. <token> means a library concept; anything else is looked up as a word.
    """
    from ticraft.analysis.neighbors import find_neighbors

    lib = open_library(library)
    early = resolve_without_model(query, lib)  # a missing <token> or file is said before the model loads
    bb = load_model(model, device, dtype)
    target = early or resolve_concept(query, lib, bb, words="vectors")
    others: Any = lib.matrix(dims=bb.dims) if concepts > 0 else []  # one cached matrix, not a file per concept
    report = find_neighbors(
        bb, target, k=k, metric=metric.value, per_vector=per_vector, library_concepts=others, k_concepts=concepts
    )
    score_name = "cos" if metric is Metric.cosine else "L2"
    for key in dict.fromkeys(r.key for r in report.rows):
        rows = [r for r in report.rows if r.key == key]
        stats = report.vocab_norms[key]
        # as many vector columns as the terminal shows readably (a 3-vector XTI concept has 22): the rest in more tables
        width = max(1, (console.width - 6) // NEIGHBOR_COLUMN)
        parts = [rows[i:i + width] for i in range(0, len(rows), width)]
        for n, part in enumerate(parts, 1):
            of = f" ({n}/{len(parts)})" if len(parts) > 1 else ""
            table = Table(title=f"{escape(report.query)} · {key} · nearest tokens ({score_name}){of}",
                          title_justify="left")
            table.add_column("#", justify="right", style="dim")
            for r in part:
                table.add_column(f"{r.label}\nnorm {r.norm:.3f} · p{r.percentile:.0f}")
            for i in range(max(len(r.matches) for r in part)):
                table.add_row(
                    str(i + 1),
                    *[(f"{escape(r.matches[i].token)} [dim]{r.matches[i].score:.3f}[/]" if i < len(r.matches) else "")
                      for r in part],
                )
            console.print(table)
        console.print(
            f"[dim]vocabulary norms ({key}): median {stats['median']:.3f}, 99th percentile "
            f"{stats['p99']:.3f}, max {stats['max']:.3f}[/]"
        )
        far = [r for r in rows if r.norm > 1.5 * stats["max"]]
        if far:
            console.print(
                f"[yellow]{', '.join(r.label for r in far)}: norm far above every vocabulary token "
                f"(off the word manifold; such vectors tend to dominate a prompt)[/]"
            )
    if report.concepts:
        t = Table()
        t.add_column("nearest library concept")
        t.add_column("cos (mean vectors)", justify="right")
        for m in report.concepts:
            t.add_row(escape(m.token), f"{m.cosine:.3f}")
        console.print(t)
    write_json(json_out, report.to_dict())


# --------------------------------------------------------------------------------------------------------- mix
def mix_command(
    expression: Annotated[str, typer.Argument(help='e.g. "0.7*<cat-toy> + 0.3*painting - 0.2*blurry"; see --help.')],
    as_token: Annotated[
        Optional[str], typer.Option("--as", help="Token to save the result under, e.g. <cat-paint>.")
    ] = None,
    words: Annotated[
        Optional[Words],
        typer.Option("--words", help="mean (default): a multi-token word is its rows' mean; vectors: one vector per "
                     "token."),
    ] = None,
    tags: Annotated[
        Optional[list[str]], typer.Option("--tag", "-t", help="Tag for the saved concept (repeatable).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing concept with that token.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Evaluate and show the result without saving it.")] = False,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Arithmetic on concepts and words, saved to the library.

    Numbers, + - * /, parentheses, <concept> tokens, vocabulary words (quote phrases: "oil painting") and the
    functions slerp(a, b, t), lerp(a, b, t), norm(a[, x]), vec(a, i), concat(a, b, ...), mean(a[, b, ...]),
    pad(a, n), merge(a, n). Results equal the same Python operators on Concept exactly.
    """
    from ticraft.analysis import expr as ex
    from ticraft.analysis.neighbors import word_concept
    from ticraft.cli.expression_arg import strip_marker
    from ticraft.errors import TicraftError
    from ticraft.library import validate_token

    expression = strip_marker(expression)
    tree = ex.parse(expression)  # syntax errors first: they are the most likely mistake
    if as_token is None and not dry_run:
        raise TicraftError('give the new concept a token with --as "<name>" (or use --dry-run)')
    if dry_run:
        _refuse_unsaved(tags, overwrite)
    if as_token is not None:
        validate_token(as_token)  # the check saving does, made up front: an empty --as is an error, not "<mix>"
    has_words = bool(ex.words(tree))
    if not has_words:
        _refuse_model_options(model=model, device=device, dtype=dtype, words=words)
    lib = open_library(library)
    bb = load_model(model, device, dtype) if has_words else None
    mode = (words or Words.mean).value
    word_fn = (lambda w: word_concept(bb, w, mode=mode)) if bb is not None else None  # type: ignore[arg-type]
    result = ex.mix(expression, concepts=lib.get, words=word_fn, token=as_token if as_token is not None else "<mix>")
    if bb is not None:  # how words became vectors matters only when there were words
        result.meta["words"] = mode
        result.meta["model"] = bb.name
    table = Table(title=f"{escape(result.token)} = {escape(expression)}", title_justify="left")
    table.add_column("encoder")
    table.add_column("vectors", justify="right")
    table.add_column("norms")
    for key, norms in result.norms().items():
        table.add_row(key, str(result.num_vectors), ", ".join(f"{n:.3f}" for n in norms))
    console.print(table)
    if dry_run:
        console.print("[dim]dry run: nothing saved[/]")
        return
    entry = lib.add(result, tags=tags or (), overwrite=overwrite)
    console.print(f"saved [cyan]{escape(entry.token)}[/] to {escape(str(entry.folder))}")


def _refuse_unsaved(tags: list[str] | None, overwrite: bool) -> None:
    """--dry-run saves nothing, so options about saving would silently do nothing: refuse them."""
    from ticraft.errors import TicraftError

    given = [name for name, on in (("--tag", bool(tags)), ("--overwrite", overwrite)) if on]
    if given:
        many = len(given) > 1
        raise TicraftError(f"{' and '.join(given)} only {'matter' if many else 'matters'} when saving: drop "
                           f"{'them' if many else 'it'} or --dry-run")


def _refuse_model_options(*, model: str | None, device: str | None, dtype: Any, words: Words | None) -> None:
    """An expression without plain words loads no model: refuse options that would then be ignored.

    (As `library export` refuses --model without --flatten: a given option that does nothing is a mistake to say.)
    """
    from ticraft.errors import TicraftError

    named = (("--model", model), ("--device", device), ("--dtype", dtype), ("--words", words))
    given = [name for name, v in named if v is not None]
    if given:
        listed = ", ".join(given[:-1]) + (" and " if len(given) > 1 else "") + given[-1]
        many = len(given) > 1
        raise TicraftError(f"{listed} only {'matter' if many else 'matters'} when the expression has plain words (it "
                           f"names only concepts and numbers, so no model loads): drop {'them' if many else 'it'}")
