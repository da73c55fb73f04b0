"""Shared pieces of the CLI: the consoles, the error boundary, opening the library, loading the model.

The options themselves live in :mod:`ticraft.cli.options`; ``LibraryOption`` and ``ModelOption`` are
re-exported here for the command modules that import them from this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from ticraft.cli.options import Dtype, LibraryOption, ModelOption, value

if TYPE_CHECKING:  # pragma: no cover
    from ticraft.library import Library
    from ticraft.models.backbone import Backbone

__all__ = ["LibraryOption", "ModelOption", "TicraftGroup", "console", "err_console", "load_model", "open_library"]

# soft_wrap: long paths print on one line (copyable), tables still fit the terminal.
console = Console(soft_wrap=True)
err_console = Console(stderr=True)


class TicraftGroup(typer.core.TyperGroup):
    """Top-level group that turns ticraft's user errors into one clean message (no traceback)."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        from ticraft.errors import TicraftError

        try:
            return super().invoke(ctx)
        except (TicraftError, OSError) as exc:
            # typer vendors its own click, so a plain click.ClickException would not be recognised:
            # print the message ourselves and exit like click does for usage errors. An OSError (an --out
            # path under a file, a read-only folder, a full disk) names its file, not "[Errno 20] …".
            text = str(exc)
            if isinstance(exc, OSError) and not isinstance(exc, TicraftError) and exc.filename is not None:
                text = f"{exc.filename}: {(exc.strerror or text).lower()}"
            err_console.print(f"[red]Error:[/] {escape(text)}", soft_wrap=True)
            raise typer.Exit(1) from exc


def open_library(path: Path | None) -> "Library":
    """Resolve and open the library the user meant (see ticraft.library.resolve_library)."""
    from ticraft.library import Library

    return Library.resolve(path)


def load_model(model: str | None, device: str | None = None, dtype: Dtype | str | None = None) -> "Backbone":
    """The model a command's ``--model/--device/--dtype`` name, loaded once with a spinner.

    ``device`` falls back to ``ticraft config set device``, then auto (CUDA when present); ``dtype`` auto
    means bf16 (or fp16) on CUDA and fp32 elsewhere. The loading itself is
    :func:`ticraft.models.load.load_backbone`, the one place a ``--model`` spec becomes a model.
    """
    from ticraft.devices import resolve_device, resolve_dtype
    from ticraft.models.load import load_backbone

    dev = resolve_device(device)  # None: the configured device, else auto
    dt = resolve_dtype(value(dtype) if isinstance(dtype, Dtype) else dtype, dev)
    with console.status(f"loading model {escape(model or '(configured default)')}…", spinner="dots"):
        return load_backbone(model, device=dev, dtype=dt)
