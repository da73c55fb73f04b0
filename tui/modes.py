"""The app's four screens as modes: their titles and classes (imported on demand).

Kept apart from ``app.py`` so that the command palette (``commands.py``) and the app can both use it
without importing each other.
"""

from __future__ import annotations

import importlib
from typing import Any

from textual.screen import Screen

#: mode → title, in the order of the number keys.
SCREEN_TITLES = {"library": "Library", "compose": "Compose", "train": "Train", "map": "Map"}
_SCREEN_CLASSES = {
    "library": "ticraft_tui.screens.library:LibraryScreen",
    "compose": "ticraft_tui.screens.compose:ComposeScreen",
    "train": "ticraft_tui.screens.train:TrainScreen",
    "map": "ticraft_tui.screens.map:MapScreen",
}


def screen_class(mode: str) -> type[Screen[Any]]:
    """The Screen class of ``mode`` (imported on demand: startup only pays for the first screen)."""
    module, _, name = _SCREEN_CLASSES[mode].partition(":")
    return getattr(importlib.import_module(module), name)
