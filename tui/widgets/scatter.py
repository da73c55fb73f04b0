"""The concept map as an in-terminal scatter (textual-plotext): tokens as dots, concepts labelled and clickable.

Labels never overlap: :func:`place_labels` gives each concept label its own cells (moving it a row or two,
or left, when another is in the way) and leaves out the labels that find no room — those concepts keep their
marker and stay in the side list. The selected concept's label is placed first, so it always shows.
"""

from __future__ import annotations

from typing import Any, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.message import Message
from textual_plotext import PlotextPlot

from ..guard import GuardedHandlers
from ..text import clean

CLICK_RADIUS = 3  # cells: a click this close to a label's first cell picks it
#: Cells of the widget that are not plot area (y-axis ticks and frame; title, x-axis ticks and frame). Taken
#: generously: a smaller assumed area spaces labels further apart, never closer.
_MARGIN_X, _MARGIN_Y = 14, 6
#: Rows tried around a label's own row, in order.
_ROW_SHIFTS = (0, -1, 1, -2, 2)


def place_labels(points: Sequence[Any], width: int, height: int, first: str | None = None,
                 ) -> list[tuple[str, float, float]]:
    """Where to write each concept's label so that no two share a cell: ``[(label, x, y), …]`` in data
    coordinates, for a plot of ``width`` × ``height`` cells. Labels that find no room are left out.

    ``points`` are all map points (their range fixes the scale); only ``kind == "concept"`` ones get labels;
    ``first`` (the selected concept) is placed before the others.
    """
    if not points:
        return []
    xs, ys = [p.x for p in points], [p.y for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    cols, rows = max(8, width - _MARGIN_X), max(3, height - _MARGIN_Y)
    sx = (x1 - x0) / (cols - 1) if x1 > x0 else 1.0
    sy = (y1 - y0) / (rows - 1) if y1 > y0 else 1.0
    taken: dict[int, list[tuple[int, int]]] = {}
    concepts = sorted((p for p in points if p.kind == "concept"), key=lambda p: p.label != first)
    out: list[tuple[str, float, float]] = []
    for p in concepts:
        label = clean(p.label)
        size = cell_len(label) + 1  # one free cell after each label keeps neighbours apart
        col = min(round((p.x - x0) / sx), max(0, cols - size))
        row = round((y1 - p.y) / sy)
        for shift in _ROW_SHIFTS:
            r = row + shift
            if not 0 <= r < rows:
                continue
            spans = taken.setdefault(r, [])
            if all(col + size <= a or b <= col for a, b in spans):
                spans.append((col, col + size))
                out.append((p.label, x0 + col * sx, y1 - r * sy))
                break
    return out


class MapPlot(GuardedHandlers, PlotextPlot):
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
        self.placed: list[tuple[str, float, float]] = []  # labels drawn, where (see place_labels)
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
        self._lines = text.plain.splitlines() if isinstance(text, Text) else []
        return text  # type: ignore[return-value]

    def label_cells(self) -> dict[str, tuple[int, int, int]]:
        """Where each concept label was drawn: ``{label: (column, row, width)}`` in content coordinates.

        Read from the drawn canvas rather than recomputed from plotext's axis layout (margins, tick widths),
        so a click maps to exactly what the user sees. A label cut by the plot's right edge counts by its visible
        part (at least 3 cells); labels hidden under others are absent.
        """
        out: dict[str, tuple[int, int, int]] = {}
        drawn = {label for label, _, _ in self.placed} if self.placed else None
        for p in self.points:
            if p.kind != "concept" or (drawn is not None and p.label not in drawn):
                continue
            labels = [q.label for q in self.points if q.kind == "concept" and q.label != p.label]
            name = clean(p.label)
            for width in range(len(name), min(len(name), 3) - 1, -1):
                if width < len(name) and any(clean(q).startswith(name[:width]) for q in labels):
                    break  # a cut "<ca" could be <cat> or <car>: too short to tell
                cell = self._find(name[:width], cut=width < len(name))
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
            size = self.content_size
            self.placed = place_labels(self.points, size.width or 80, size.height or 24, self.selected)
            for label, x, y in self.placed:
                plt.text(clean(label), x, y, color="orange" if label == self.selected else "cyan")
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._draw()  # label room depends on the size
