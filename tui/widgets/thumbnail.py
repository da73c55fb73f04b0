"""Image thumbnails: textual-image's best renderer in a real terminal, half cells when forced.

textual-image picks Sixel / Kitty graphics / half cells by querying the terminal when it is first
imported, which must happen before Textual takes over stdin — importing this module early (the
app does) takes care of that. Tests and plain terminals force the half-cell renderer with
:func:`set_image_mode`, ``ticraft tui --images halfcell`` or ``TICRAFT_TUI_IMAGES=halfcell``: its
output is plain coloured text, so SVG snapshots are stable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.containers import HorizontalScroll, Vertical
from textual.widgets import Label
from textual_image.widget import HalfcellImage, UnicodeImage
from textual_image.widget import Image as AutoImage

from ..text import clean

#: "auto" (best the terminal supports), "halfcell" or "unicode".
_MODE = os.environ.get("TICRAFT_TUI_IMAGES", "auto")
_CLASSES = {"auto": AutoImage, "halfcell": HalfcellImage, "unicode": UnicodeImage}


def set_image_mode(mode: str) -> None:
    """Choose the renderer for thumbnails created from now on."""
    global _MODE
    if mode not in _CLASSES:
        raise ValueError(f"image mode must be one of {', '.join(_CLASSES)}")
    _MODE = mode


def image_mode() -> str:
    return _MODE if _MODE in _CLASSES else "auto"


class Thumbnail(Vertical):
    """One image (a path or a PIL image) with a caption under it."""

    DEFAULT_CSS = """
    Thumbnail { width: 18; height: auto; margin: 0 1 0 0; }
    Thumbnail > .thumb-image { width: 16; height: 8; }
    Thumbnail > Label { width: 16; color: $text-muted; text-overflow: ellipsis; text-wrap: nowrap; }
    """

    def __init__(self, image: str | Path | Any, caption: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._image = str(image) if isinstance(image, Path) else image
        self._caption = caption

    def compose(self) -> ComposeResult:
        image_cls = _CLASSES[image_mode()]
        try:
            yield image_cls(self._image, classes="thumb-image")
        except Exception as exc:  # noqa: BLE001 - an unreadable file becomes a label, not a crash
            yield Label(f"[unreadable: {exc.__class__.__name__}]", classes="thumb-image", markup=False)
        yield Label(clean(self._caption), markup=False)


class Gallery(HorizontalScroll):
    """A horizontal strip of thumbnails."""

    DEFAULT_CSS = """
    Gallery { height: 12; border: round $panel; scrollbar-size-horizontal: 1; }
    Gallery > .empty { color: $text-muted; padding: 1 2; }
    """

    def __init__(self, empty: str = "nothing yet", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._empty = empty
        self.items: list[Any] = []

    def on_mount(self) -> None:
        if not self.items:
            self.mount(Label(self._empty, classes="empty", markup=False))

    def show(self, items: list[tuple[Any, str]], limit: int = 24) -> None:
        """Replace the strip by ``(image, caption)`` items (at most ``limit``)."""
        self.items = [img for img, _ in items]
        self.remove_children()
        if not items:
            self.mount(Label(self._empty, classes="empty", markup=False))
            return
        self.mount_all(Thumbnail(img, cap) for img, cap in items[:limit])

    def add(self, image: Any, caption: str) -> None:
        """Append one thumbnail."""
        if not self.items:
            self.remove_children()
        self.items.append(image)
        self.mount(Thumbnail(image, caption))
