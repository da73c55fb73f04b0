"""The concept map as an in-terminal scatter (textual-plotext): tokens as dots, concepts labelled."""

from __future__ import annotations

from typing import Any, Sequence

from textual_plotext import PlotextPlot


class MapPlot(PlotextPlot):
    """Scatter of map points; ``selected`` (a concept label) is drawn highlighted."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.points: Sequence[Any] = ()
        self.selected: str | None = None

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
