"""The `?` help screen: every key active where it was opened (the screen's, the focused widget's, the app's)."""

from __future__ import annotations

from typing import Any, Mapping

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

INTRO = """\
# ticraft TUI

Keyboard first; the mouse works too. **Ctrl+P** opens the command palette, which lists every action.
Screens: **1** Library · **2** Compose · **3** Train · **4** Map (**F1**–**F4** work while typing).
On the Map, pick a concept from the list or click its label on the scatter to see its nearest tokens.
Long jobs run in the background and can be cancelled with **Escape**; errors show as notifications
(the palette's *Messages* lists them all again). Thumbnails use the terminal's graphics (Sixel/Kitty)
when it has them; `ticraft tui --images halfcell` forces coloured half blocks.
"""


def describe_bindings(active: Mapping[str, Any]) -> str:
    """A Markdown table from ``screen.active_bindings`` (key → ActiveBinding(node, binding, …))."""
    rows = ["| Key | Action | From |", "|---|---|---|"]
    for key, active_binding in active.items():
        binding: Binding = active_binding.binding
        if not binding.description:
            continue
        owner = type(active_binding.node).__name__
        rows.append(f"| `{binding.key_display or key}` | {binding.description} | {owner} |")
    return "\n".join(rows)


class HelpScreen(ModalScreen[None]):
    """Help text and the key table; Escape, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; height: 80%; border: thick $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close help")]

    def __init__(self, table: str, *, intro: bool = True) -> None:
        super().__init__()
        self.table, self.intro = table, intro

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown((INTRO + "\n" if self.intro else "") + self.table)

    def action_close(self) -> None:
        self.dismiss(None)
