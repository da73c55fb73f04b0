"""`ticraft info IMAGE.png …`: the generation parameters stored in images (needs Pillow only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ticraft.cli.common import console, err_console


def register(app: typer.Typer) -> None:
    """Add `info` to the main app."""
    app.command("info")(info_command)


def info_command(
    images: Annotated[list[Path], typer.Argument(help="PNG files made by ticraft (or A1111-style tools).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the parsed parameters as JSON.")] = False,
) -> None:
    """Show the generation parameters stored in images (prompt, seed, steps, sampler, model, concept hashes)."""
    from ticraft.errors import TicraftError
    from ticraft.generate.pngmeta import PARAMETERS_KEY, parse_parameters
    from ticraft.imaging import GRID_CHUNK, read_png_text

    failures = 0
    records = []
    for path in images:
        try:
            chunks = read_png_text(path)
        except TicraftError as exc:
            failures += 1
            err_console.print(f"[red]Error:[/] {escape(str(exc))}", soft_wrap=True)
            continue
        text = chunks.get(PARAMETERS_KEY)
        if text is None:
            failures += 1
            hint = (
                " (it embeds a textual-inversion concept: `ticraft library import` reads it)"
                if "sd-ti-embedding" in chunks
                else ""
            )
            err_console.print(f"[red]Error:[/] {escape(str(path))}: no generation parameters{escape(hint)}",
                              soft_wrap=True)
            continue
        try:
            params = parse_parameters(text)
        except TicraftError as exc:  # "field 'Seed' is not a number" alone does not say which file
            failures += 1
            err_console.print(f"[red]Error:[/] {escape(str(path))}: {escape(str(exc))}", soft_wrap=True)
            continue
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
