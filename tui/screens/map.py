"""Map screen: concepts placed among vocabulary tokens (PCA/UMAP) as a scatter; pick one (list or click) to see
its neighbours."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from ..widgets.nav import NavTabs
from ..widgets.scatter import MapPlot
from ..workers import JobCancelled, JobFailed, JobFinished, cancel_job, start_job
from .library import format_neighbors

METHODS = [("PCA", "pca"), ("UMAP", "umap")]


class MapScreen(Screen[None]):
    """Scatter on the left; concept list and the selected concept's neighbours on the right."""

    BINDINGS = [
        Binding("ctrl+g", "compute", "Compute map", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    @property
    def backend(self) -> Any:
        return self.app.backend  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavTabs("map")
        with Horizontal():
            yield MapPlot(id="plot")
            with Vertical(id="map-side"):
                with Horizontal(classes="row"):
                    yield Select(METHODS, value="pca", allow_blank=False, id="method", compact=True)
                    yield Button("Map ^g", id="compute", variant="primary", compact=True)
                yield Label("Press ^g to place the library's concepts.", id="map-status")
                yield OptionList(id="points")
                yield Static("", id="map-neighbors")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "ticraft · Map"

    def action_compute(self) -> None:
        method, backend = str(self.query_one("#method", Select).value), self.backend
        self.query_one("#map-status", Label).update(f"computing the {method.upper()} map…")
        start_job(self, "map", lambda _: backend.map_points(method))

    def action_cancel(self) -> None:
        # Map computations have no progress callback: cancelling just ignores the answer.
        if cancel_job(self, "map"):
            self.query_one("#map-status", Label).update("cancelled")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "compute":
            self.action_compute()

    @on(OptionList.OptionHighlighted, "#points")
    def _point_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        label = event.option.id
        if label is None:
            return
        self.query_one(MapPlot).select(label)
        self.query_one("#map-neighbors", Static).update(f"[dim]neighbours of {escape(label)}…[/]")
        backend = self.backend
        start_job(self, "neighbors", lambda _: (label, backend.neighbors(label)))

    @on(MapPlot.PointClicked)
    def _point_clicked(self, event: MapPlot.PointClicked) -> None:
        # go through the list, so a click and ↑↓ take the same path (highlight → plot + neighbours)
        option_list = self.query_one("#points", OptionList)
        option_list.highlighted = option_list.get_option_index(event.label)
        option_list.focus()

    @on(JobFinished)
    def _finished(self, message: JobFinished) -> None:
        if message.job == "map":
            points = list(message.result)
            concepts = [p for p in points if p.is_concept]
            self.query_one(MapPlot).show(points)
            option_list = self.query_one("#points", OptionList)
            option_list.clear_options()
            option_list.add_options([Option(escape(p.label), id=p.label) for p in concepts])
            self.query_one("#map-status", Label).update(
                f"{len(concepts)} concept(s) among {len(points) - len(concepts)} tokens · ↑↓ or click to pick one")
            if concepts:
                option_list.focus()
        elif message.job == "neighbors":
            label, rows = message.result
            if self.query_one(MapPlot).selected == label:
                self.query_one("#map-neighbors", Static).update(format_neighbors(rows))

    @on(JobFailed)
    def _failed(self, message: JobFailed) -> None:
        if message.job == "neighbors":
            self.query_one("#map-neighbors", Static).update(f"[red]{escape(str(message.error))}[/]")
            return
        self.query_one("#map-status", Label).update("failed")
        self.notify(str(message.error), title="Map failed", severity="error")

    @on(JobCancelled)
    def _cancelled(self, message: JobCancelled) -> None:
        if message.job == "map":  # neighbour lookups are cancelled whenever a newer pick replaces them
            self.query_one("#map-status", Label).update("cancelled")
