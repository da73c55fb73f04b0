"""The library's concept list: virtualised, so 10,000 concepts cost what the visible rows cost.

A :class:`~textual.scroll_view.ScrollView` drawn line by line (Textual's Line API): :meth:`ConceptList.show`
only keeps the entries; each frame renders the header and the rows on screen. Tokens and tags are drawn
as plain text (never markup), cut with an ellipsis to their column.
"""

from __future__ import annotations

from typing import Any, Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..guard import GuardedHandlers
from ..text import clean

COLUMNS = ("Token", "Family", "Vec", "Tags", "Steps")


class ConceptList(GuardedHandlers, ScrollView, can_focus=True):
    """Rows of library entries under a fixed header line; the cursor row is highlighted.

    Posts :class:`ConceptList.Highlighted` when the cursor moves to another token and
    :class:`ConceptList.Selected` on Enter (or a click on the cursor row).
    """

    DEFAULT_CSS = """
    ConceptList { background: $surface; }
    ConceptList > .concept-list--header { text-style: bold; color: $text-muted; }
    ConceptList > .concept-list--cursor { background: $block-cursor-blurred-background; }
    ConceptList:focus > .concept-list--cursor { background: $block-cursor-background;
                                                color: $block-cursor-foreground; text-style: bold; }
    ConceptList > .concept-list--odd { background: $surface-lighten-1 30%; }
    """
    COMPONENT_CLASSES = {"concept-list--header", "concept-list--cursor", "concept-list--odd"}
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "move_to_row(0)", "First", show=False),
        Binding("end", "move_to_row(-1)", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=False)

    class Highlighted(Message):
        """The cursor moved to ``token`` (None: the list is empty)."""

        def __init__(self, token: str | None) -> None:
            super().__init__()
            self.token = token

    class Selected(Message):
        """Enter (or a click on the cursor row) on ``token``."""

        def __init__(self, token: str) -> None:
            super().__init__()
            self.token = token

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entries: list[Any] = []
        self._index: dict[str, int] = {}
        self._token_width = 12

    # ------------------------------------------------------------------ data
    def show(self, entries: Sequence[Any]) -> None:
        """Replace the rows, keeping the cursor on the same token when it is still listed."""
        keep = self.current_token()
        self.entries = list(entries)
        self._index = {e.token: i for i, e in enumerate(self.entries)}
        longest = max((cell_len(clean(e.token)) for e in self.entries[:2000]), default=5)
        self._token_width = max(5, longest)
        self.virtual_size = Size(self.size.width or 80, len(self.entries) + 1)
        row = self._index.get(keep, 0) if keep is not None else 0
        self.set_reactive(ConceptList.cursor, min(row, max(0, len(self.entries) - 1)))
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Highlighted(self.current_token()))

    @property
    def row_count(self) -> int:
        return len(self.entries)

    def tokens(self) -> list[str]:
        """Every listed token, in order."""
        return [e.token for e in self.entries]

    def current_token(self) -> str | None:
        """The token under the cursor (None when empty)."""
        return self.entries[self.cursor].token if 0 <= self.cursor < len(self.entries) else None

    def move_to(self, token: str) -> bool:
        """Put the cursor on ``token``; False when it is not listed."""
        row = self._index.get(token)
        if row is None:
            return False
        self.cursor = row
        return True

    # ------------------------------------------------------------------ cursor
    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Highlighted(self.current_token()))

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.entries) - 1)) if self.entries else 0

    def _page(self) -> int:
        return max(1, self.size.height - 2)

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.size.height - 1)  # the header line does not scroll
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def action_move(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * self._page()

    def action_move_to_row(self, row: int) -> None:
        self.cursor = row if row >= 0 else len(self.entries) - 1

    def action_select(self) -> None:
        token = self.current_token()
        if token is not None:
            self.post_message(self.Selected(token))

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        row = round(self.scroll_y) + event.y - 1
        if 0 <= row < len(self.entries):
            if row == self.cursor:
                self.action_select()
            self.cursor = row

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.entries) + 1)
        self._scroll_to_cursor()

    # ------------------------------------------------------------------ drawing
    def _widths(self, width: int) -> list[int]:
        """Column widths for ``width`` cells: fixed small columns, the token up to its longest, tags the rest."""
        family, vec, steps = 6, 3, 5
        rest = max(14, width - family - vec - steps - 5)  # five one-cell gaps (with a leading one)
        token = min(self._token_width, rest - 4)  # the token matters most; tags get at least four cells
        return [token, family, vec, rest - token, steps]

    def _cells(self, values: Sequence[str], style: Style, width: int) -> Strip:
        line = Text(" ", style=style, end="")
        for value, w in zip(values, self._widths(width), strict=True):
            cell = Text(clean(value), style=style, end="", no_wrap=True)
            cell.truncate(w, overflow="ellipsis", pad=True)
            line.append_text(cell)
            line.append(" ", style)
        line.truncate(width, pad=True)
        segments = [Segment(s.text, s.style) for s in line.render(self.app.console)]
        return Strip(segments).crop(0, width).extend_cell_length(width, style)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            return self._cells(COLUMNS, base + self.get_component_rich_style("concept-list--header"), width)
        row = round(self.scroll_y) + y - 1
        if row >= len(self.entries):
            return Strip.blank(width, base)
        e = self.entries[row]
        style = base
        if row == self.cursor:
            style = base + self.get_component_rich_style("concept-list--cursor")
        elif row % 2:
            style = base + self.get_component_rich_style("concept-list--odd")
        steps = "" if e.steps is None else str(e.steps)
        return self._cells((e.token, e.family or "?", str(e.num_vectors), ", ".join(e.tags), steps), style, width)
