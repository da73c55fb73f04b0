"""The concept map as an in-terminal scatter (textual-plotext): tokens as dots, concepts labelled and clickable."""

from __future__ import annotations

from typing import Any, Sequence

from rich.text import Text
from textual import events
from textual.message import Message
from textual_plotext import PlotextPlot

CLICK_RADIUS = 3  # cells: a click this close to a label's first cell picks it


class MapPlot(PlotextPlot):
    """Scatter of map points; ``selected`` (a concept label) is drawn highlighted; clicking a concept posts
    :class:`MapPlot.PointClicked`."""

    class PointClicked(Message):
        """A concept's label (or the cell next to it) was clicked."""

        def __init__(self, label: str) -> None:
            super().__init__()
            self.label = label

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.points: Sequence[Any] = ()
        self.selected: str | None = None
        self._lines: list[str] = []  # the last drawn canvas as plain text, to find labels where plotext put them

    def on_mount(self) -> None:
        super().on_mount()
        self._draw()

    def show(self, points: Sequence[Any], selected: str | None = None) -> None:
        """Draw ``points`` (objects with label, x, y and kind: ``vocab``, ``neighbor`` or ``concept``)."""
        self.points, self.selected = points, selected
        self._draw()

    def select(self, label: str | None) -> None:
        self.selected = label
        self._draw()

    def render(self) -> Text:
        text = super().render()
        self._lines = text.plain.splitlines()
        return text

    def label_cells(self) -> dict[str, tuple[int, int, int]]:
        """Where each concept label was drawn: ``{label: (column, row, width)}`` in content coordinates.

        Read from the drawn canvas rather than recomputed from plotext's axis layout (margins, tick widths),
        so a click maps to exactly what the user sees. A label cut by the plot's right edge counts by its visible
        part (at least 3 cells); labels hidden under others are absent.
        """
        out: dict[str, tuple[int, int, int]] = {}
        for p in self.points:
            if p.kind != "concept":
                continue
            labels = [q.label for q in self.points if q.kind == "concept" and q.label != p.label]
            for width in range(len(p.label), min(len(p.label), 3) - 1, -1):
                if width < len(p.label) and any(q.startswith(p.label[:width]) for q in labels):
                    break  # a cut "<ca" could be <cat> or <car>: too short to tell
                cell = self._find(p.label[:width], cut=width < len(p.label))
                if cell is not None:
                    out[p.label] = (*cell, width)
                    break
        return out

    def _find(self, text: str, cut: bool) -> tuple[int, int] | None:
        for row, line in enumerate(self._lines[1:], start=1):  # row 0 is the title
            col = line.find(text)
            # a cut label must end where the frame (or the line) does, so "<zo" does not match inside "<zorb>"
            if col >= 0 and (not cut or line[col + len(text) : col + len(text) + 1] in ("│", "┤", "")):
                return col, row
        return None

    def label_at(self, x: int, y: int) -> str | None:
        """The concept whose label covers cell (x, y), else the one whose label starts nearest within
        :data:`CLICK_RADIUS` cells."""
        cells = self.label_cells()
        for label, (col, row, width) in cells.items():
            if row == y and col <= x < col + width:
                return label
        near = [(max(abs(col - x), abs(row - y)), label) for label, (col, row, _) in cells.items()]
        near = [item for item in near if item[0] <= CLICK_RADIUS]
        return min(near)[1] if near else None

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        label = self.label_at(offset.x, offset.y) if offset is not None else None
        if label is not None:
            self.post_message(self.PointClicked(label))

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title("concepts among vocabulary tokens")
        words = [p for p in self.points if p.kind == "vocab"]
        near = [p for p in self.points if p.kind == "neighbor"]
        concepts = [p for p in self.points if p.kind == "concept"]
        if words:
            plt.scatter([p.x for p in words], [p.y for p in words], marker="dot", color="gray")
        if near:
            plt.scatter([p.x for p in near], [p.y for p in near], marker="dot", color="yellow")
        if concepts:
            plt.scatter([p.x for p in concepts], [p.y for p in concepts], marker="x", color="cyan")
            for p in concepts:
                color = "orange" if p.label == self.selected else "cyan"
                plt.text(p.label, p.x, p.y, color=color)
        self.refresh()
