"""The `?` help screen: every key active where it was opened (the screen's, the focused widget's, the app's)."""

from __future__ import annotations

from typing import Any, Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

INTRO = """\
# ticraft TUI

Keyboard first; the mouse works too. Screens: **1** Library · **2** Compose · **3** Train · **4** Map.
Inside a text field the number keys type digits: **F1**–**F4** switch screens, **F5** opens this help,
**Escape** leaves the field (then the screen's keys work again). **Ctrl+P** lists every action.
On the Map, pick a concept from the list or click its label on the scatter to see its nearest tokens.
Long jobs run in the background; **Escape** (outside a field) cancels them, and **Ctrl+Q** asks before
quitting while one runs. Errors show as messages (the palette's *Messages* lists them all again).
Thumbnails use the terminal's graphics (Sixel/Kitty) when it has them; `ticraft tui --images halfcell`
forces coloured half blocks.
"""

_KEY_NAMES = {"question_mark": "?", "slash": "/", "escape": "Esc", "delete": "Del", "enter": "Enter"}


def key_label(key: str) -> str:
    """A key as people write it.

    >>> key_label("ctrl+g"), key_label("f4"), key_label("question_mark")
    ('Ctrl+G', 'F4', '?')
    """
    if key in _KEY_NAMES:
        return _KEY_NAMES[key]
    *mods, last = key.split("+")
    last = last.upper() if len(last) == 1 or (last[0] == "f" and last[1:].isdigit()) else last.capitalize()
    return "+".join([m.capitalize() for m in mods] + [last])


def binding_rows(bindings: Iterable[Any], seen: set[str]) -> list[tuple[str, str]]:
    """``(keys, description)`` for each described binding whose action is not in ``seen`` (which grows):
    a binding listed under several keys, or by a screen and the app, shows once."""
    rows: list[tuple[str, str]] = []
    for binding in bindings:
        if isinstance(binding, tuple) or not binding.description or binding.action in seen:
            continue
        seen.add(binding.action)
        keys = " ".join(key_label(k.strip()) for k in binding.key.split(","))
        rows.append((keys, binding.description))
    return rows


def describe_bindings(screen: Any, app: Any) -> str:
    """Markdown tables of the keys: ``screen``'s own actions first, then the ones that work everywhere.

    Only the screen's and the app's bindings are listed: the generic keys of text fields and tables
    (cursor moves, delete left…) are what any such widget does.
    """
    seen: set[str] = set()
    title = getattr(screen, "title", None) or type(screen).__name__
    own = binding_rows(type(screen).BINDINGS, seen)
    everywhere = binding_rows(type(app).BINDINGS, seen)
    everywhere += [("Ctrl+P", "Command palette: every action"), ("Esc", "Leave a text field")]
    out: list[str] = []
    for heading, rows in ((f"On this screen ({title.split('·')[-1].strip()})", own), ("Everywhere", everywhere)):
        out += [f"## {heading}", "", "| Key | Action |", "|---|---|"]
        out += [f"| `{keys}` | {text} |" for keys, text in rows] or ["| | (none) |"]
        out.append("")
    return "\n".join(out)


class HelpScreen(ModalScreen[None]):
    """The key tables, then the help text; Escape, q, ? or F5 closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100%; max-width: 90; height: 100%; max-height: 40; border: thick $accent;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark,f5", "close", "Close help")]

    def __init__(self, table: str, *, intro: bool = True) -> None:
        super().__init__()
        self.table, self.intro = table, intro

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            # The keys first: on a small terminal this screen's own actions are what shows without scrolling.
            yield Markdown(self.table + ("\n" + INTRO.replace("# ticraft TUI", "## About") if self.intro else ""))

    def action_close(self) -> None:
        self.dismiss(None)
