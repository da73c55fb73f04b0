"""Shared pieces of the CLI: the console, the error boundary, common options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer
from rich.console import Console
from rich.markup import escape

# soft_wrap: long paths print on one line (copyable), tables still fit the terminal.
console = Console(soft_wrap=True)
err_console = Console(stderr=True)

LibraryOption = Annotated[
    Optional[Path],
    typer.Option("--library", "-L", help="Library folder (default: $TICRAFT_LIBRARY, ./embeddings, user data dir)."),
]
ModelOption = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Model: 'toy', a diffusers folder, a .safetensors/.ckpt file, or a cached hub id."),
]


class TicraftGroup(typer.core.TyperGroup):
    """Top-level group that turns ticraft's user errors into one clean message (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        from ticraft.errors import TicraftError

        try:
            return super().invoke(ctx)
        except (TicraftError, FileNotFoundError) as exc:
            # typer vendors its own click, so a plain click.ClickException would not be recognised:
            # print the message ourselves and exit like click does for usage errors.
            err_console.print(f"[red]Error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from exc


def open_library(path: Path | None):
    """Resolve and open the library the user meant (see ticraft.library.resolve_library)."""
    from ticraft.library import Library

    return Library.resolve(path)
