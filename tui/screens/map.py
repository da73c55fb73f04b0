"""Map screen: concepts placed among vocabulary tokens (PCA/UMAP) as a scatter; pick one (list or click) to see
its neighbours."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, OptionList, Select, Static
from textual.widgets.option_list import Option

from ..guard import describe
from ..text import counted, join, plain
from ..widgets.job_status import JobStatus
from ..widgets.nav import NavTabs
from ..widgets.scatter import MapPlot
from ..workers import JobCancelled, JobFailed, JobFinished, JobPhase, cancel_job, start_job
from .base import TicraftScreen
from .library import format_neighbors

METHODS = [("PCA", "pca"), ("UMAP", "umap")]


class MapScreen(TicraftScreen):
    """Scatter on the left; concept list and the selected concept's neighbours on the right."""

    BINDINGS = [
        Binding("ctrl+g", "compute", "Compute map", priority=True),
        Binding("escape", "escape", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavTabs("map")
        with Horizontal():
            yield MapPlot(id="plot")
            with Vertical(id="map-side"):
                with Horizontal(classes="row"):
                    yield Select(METHODS, value="pca", allow_blank=False, id="method", compact=True)
                    yield Button("Map ^g", id="compute", variant="primary", compact=True)
                yield JobStatus(idle="Press ^g to place the library's concepts.", id="map-job")
                yield OptionList(id="points", markup=False)
                yield Static("", id="map-neighbors")
        yield Footer(compact=True, show_command_palette=False)  # 80 columns: the screen's keys and help first

    def on_mount(self) -> None:
        self.title = "ticraft · Map"

    def home(self) -> Widget | None:
        return self.query_one("#points", OptionList)

    def action_compute(self) -> None:
        method, backend = str(self.query_one("#method", Select).value), self.backend
        self.query_one(JobStatus).start(f"computing the {method.upper()} map")
        start_job(self, "map", lambda progress: backend.map_points(method, progress=progress), important=True)

    def cancel_jobs(self) -> bool:
        return cancel_job(self, "map")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "compute":
            self.action_compute()

    @on(OptionList.OptionHighlighted, "#points")
    def _point_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        label = event.option.id
        if label is None:
            return
        self.query_one(MapPlot).select(label)
        self.query_one("#map-neighbors", Static).update(plain(f"neighbours of {label}…", "dim"))
        backend = self.backend
        start_job(self, "neighbors", lambda progress: (label, backend.neighbors(label, progress=progress)))

    @on(MapPlot.PointClicked)
    def _point_clicked(self, event: MapPlot.PointClicked) -> None:
        # go through the list, so a click and ↑↓ take the same path (highlight → plot + neighbours)
        option_list = self.query_one("#points", OptionList)
        option_list.highlighted = option_list.get_option_index(event.label)
        option_list.focus()

    @on(JobPhase)
    def _phase(self, message: JobPhase) -> None:
        if message.job == "map":
            self.query_one(JobStatus).phase(message.name)

    @on(JobFinished)
    def _finished(self, message: JobFinished) -> None:
        if message.job == "map":
            points = list(message.result)
            concepts = [p for p in points if p.is_concept]
            plot = self.query_one(MapPlot)
            plot.show(points)
            option_list = self.query_one("#points", OptionList)
            option_list.clear_options()
            option_list.add_options([Option(plain(p.label), id=p.label) for p in concepts])
            hidden = len(concepts) - len(plot.placed)
            note = f" ({counted(hidden, 'label')} left off the plot: no room)" if hidden > 0 else ""
            among = f"{counted(len(concepts), 'concept')} among {len(points) - len(concepts)} tokens"
            self.query_one(JobStatus).done(f"{among}{note} · ↑↓ or click to pick one")
            if concepts:
                option_list.focus()
        elif message.job == "neighbors":
            label, rows = message.result
            if self.query_one(MapPlot).selected == label:
                self.query_one("#map-neighbors", Static).update(format_neighbors(rows))

    @on(JobFailed)
    def _failed(self, message: JobFailed) -> None:
        if message.job == "neighbors":
            self.query_one("#map-neighbors", Static).update(join((describe(message.error), "red")))
            return
        self.query_one(JobStatus).failed(f"failed: {describe(message.error)}")
        self.notify(describe(message.error), title="Map failed", severity="error")

    @on(JobCancelled)
    def _cancelled(self, message: JobCancelled) -> None:
        if message.job == "map":  # neighbour lookups are cancelled whenever a newer pick replaces them
            self.query_one(JobStatus).cancelled()
