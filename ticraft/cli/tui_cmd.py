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
        images: Annotated[
            Optional[str],
            typer.Option(
                "--images",
                help="Thumbnails: auto (Sixel/Kitty graphics when the terminal has them), "
                "halfcell (coloured half blocks, any colour terminal) or unicode.",
            ),
        ] = None,
    ) -> None:
        """Open the terminal UI: browse the library, compose images, train, map concepts."""
        try:
            from ticraft_tui.app import TicraftApp
            from ticraft_tui.backend import RealBackend
            from ticraft_tui.modes import SCREEN_TITLES
            from ticraft_tui.widgets.thumbnail import set_image_mode
        except ImportError as exc:  # textual is an optional extra
            raise typer.BadParameter(
                f"the TUI needs the [tui] extra ({exc.name} is missing): pip install 'ticraft[tui]'"
            ) from exc
        if screen is not None and screen not in SCREEN_TITLES:
            raise typer.BadParameter(f"--screen must be one of {', '.join(SCREEN_TITLES)}")
        if images is not None:
            try:
                set_image_mode(images)
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from exc
        backend = RealBackend(library=library, model=model)
        TicraftApp(backend=backend, start=screen or "library").run()
