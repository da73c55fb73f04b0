"""`ticraft tui`: open the terminal UI (textual is imported only when the command runs)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ticraft.cli.common import LibraryOption, ModelOption


def register(app: typer.Typer) -> None:
    """Add the ``tui`` command to ``app``."""

    @app.command("tui")
    def tui(
        library: LibraryOption = None,
        model: ModelOption = None,
        screen: Annotated[
            Optional[str], typer.Option("--screen", help="First screen: library, compose, train or map.")
        ] = None,
    ) -> None:
        """Open the terminal UI: browse the library, compose images, train, map concepts."""
        try:
            from ticraft_tui.app import SCREEN_TITLES, TicraftApp
            from ticraft_tui.backend import RealBackend
        except ImportError as exc:  # textual is an optional extra
            raise typer.BadParameter(
                f"the TUI needs the [tui] extra ({exc.name} is missing): pip install 'ticraft[tui]'"
            ) from exc
        if screen is not None and screen not in SCREEN_TITLES:
            raise typer.BadParameter(f"--screen must be one of {', '.join(SCREEN_TITLES)}")
        backend = RealBackend(library=library, model=model)
        TicraftApp(backend=backend, start=screen or "library").run()
