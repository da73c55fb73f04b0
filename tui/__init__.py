"""ticraft's Textual front end (import name ``ticraft_tui``; the folder is ``tui/``).

The TUI holds no domain logic: every action calls ticraft's Python API through
:mod:`ticraft_tui.backend`. Importing this package is cheap (no textual, no torch);
:func:`run` builds and runs the app.
"""

from __future__ import annotations

__all__ = ["run"]


def run(library: str | None = None, model: str | None = None) -> None:
    """Start the TUI on a library folder (resolved like the CLI) with a model spec."""
    from ticraft_tui.app import TicraftApp
    from ticraft_tui.backend import RealBackend

    TicraftApp(backend=RealBackend(library=library, model=model)).run()
