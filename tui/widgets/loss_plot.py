"""The live loss curve of a training run (textual-plotext)."""

from __future__ import annotations

from typing import Any, Iterable

from textual_plotext import PlotextPlot


class LossPlot(PlotextPlot):
    """Loss against step; call :meth:`extend` as progress arrives and :meth:`clear_points` to restart."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steps: list[int] = []
        self.losses: list[float] = []

    def on_mount(self) -> None:
        super().on_mount()
        self._draw()

    def extend(self, points: Iterable[tuple[int, float]]) -> None:
        """Add (step, loss) points and redraw. A step at or before the last one (a resumed run restarts
        from its checkpoint) replaces the curve from there on."""
        for step, loss in points:
            while self.steps and self.steps[-1] >= step:
                self.steps.pop()
                self.losses.pop()
            self.steps.append(step)
            self.losses.append(loss)
        self._draw()

    def clear_points(self) -> None:
        self.steps, self.losses = [], []
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title("loss")
        plt.xlabel("step")
        if self.steps:
            plt.plot(self.steps, self.losses, marker="braille")
        self.refresh()
