"""Train screen: images folder, token, initializer, preset → a background training run with a live loss plot,
named phases, warnings, and the newest preview first."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, Input, Label, Select

from ..guard import describe
from ..protocol import TrainRequest
from ..text import plain
from ..widgets.job_status import JobStatus
from ..widgets.loss_plot import LossPlot
from ..widgets.nav import NavTabs
from ..widgets.thumbnail import Gallery
from ..workers import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobNote,
    JobPhase,
    JobProgress,
    cancel_job,
    job_running,
    start_job,
)
from .base import TicraftScreen

#: Seconds between looks for new preview images while a run is going.
PREVIEW_POLL_S = 2.0
#: Previews shown (newest first).
MAX_PREVIEWS = 12


class TrainScreen(TicraftScreen):
    """The training form, progress, loss curve and preview samples (newest first)."""

    BINDINGS = [
        Binding("ctrl+g", "start", "Start", priority=True),
        Binding("ctrl+r", "resume", "Resume", priority=True),
        Binding("escape", "escape", "Cancel run"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request: TrainRequest | None = None
        self._poll: Any = None
        self._shown_previews: list[str] = []
        self.warnings: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavTabs("train")
        with Vertical(id="train-form"):
            with Horizontal(classes="row"):
                yield Label("Images", classes="field-label")
                yield Input(placeholder="folder (or file) of 3–5 pictures", id="images", compact=True)
            with Horizontal(classes="row"):
                yield Label("Token", classes="field-label")
                yield Input(placeholder="<my-thing>", id="token", classes="wide", compact=True)
                yield Label("Init")
                yield Input(placeholder="a word, e.g. toy", id="init", classes="wide", compact=True)
            with Horizontal(classes="row"):
                yield Label("Preset", classes="field-label")
                yield Select([], prompt="default", id="preset", compact=True)
                yield Label("Steps")
                yield Input("", id="steps", type="integer", placeholder="preset", classes="num", compact=True)
                yield Label("Vectors")  # fast preset: 3 (1 for one or two pictures, or a file other tools read as one)
                yield Input("", id="vectors", type="integer", placeholder="preset", classes="num", compact=True)
            with Horizontal(classes="row"):
                yield Button("Start ^g", id="start", variant="primary", compact=True)
                yield Button("Resume ^r", id="resume", compact=True)
                yield Button("Cancel esc", id="cancel", variant="error", disabled=True, compact=True)
            yield JobStatus(id="job")
            yield Label("", id="train-warnings", markup=False)
        with Horizontal(id="train-output"):
            yield LossPlot(id="loss")
            yield Gallery(empty="Previews appear here, newest first.", id="previews")
        yield Footer(compact=True, show_command_palette=False)  # 80 columns: the screen's keys and help first

    def on_mount(self) -> None:
        self.title = "ticraft · Train"
        try:
            presets = self.backend.presets()
        except Exception:  # noqa: BLE001 - the trainer module may be missing: train with defaults
            presets = []
        self.query_one("#preset", Select).set_options([(p, p) for p in presets])
        self.query_one("#train-warnings", Label).display = False
        self.query_one("#images", Input).focus()

    def home(self) -> Widget | None:
        return self.query_one("#start", Button)

    # ------------------------------------------------------------------ actions
    def _read(self, resume: bool) -> TrainRequest | None:
        q = lambda sid: self.query_one(sid, Input).value.strip()  # noqa: E731
        missing = [name for name, sid in (("images", "#images"), ("token", "#token"), ("initializer", "#init"))
                   if not q(sid)]
        if missing:
            self.notify(f"fill in: {', '.join(missing)}", title="Train", severity="warning")
            return None
        preset = self.query_one("#preset", Select)
        numbers: dict[str, int | None] = {}
        for name in ("steps", "vectors"):
            try:
                numbers[name] = int(q(f"#{name}")) if q(f"#{name}") else None
            except ValueError:
                self.notify(f"{name} must be a whole number", title="Train", severity="error")
                return None
        options = {} if numbers["vectors"] is None else {"num_vectors": numbers["vectors"]}
        return TrainRequest(images=q("#images"), token=q("#token"), initializer=q("#init"),
                            preset=None if preset.is_blank() else str(preset.value), steps=numbers["steps"],
                            resume=resume, options=options)

    def action_start(self, resume: bool = False) -> None:
        if job_running(self, "train"):
            self.notify("a run is already going (Escape cancels it)", severity="warning")
            return
        request = self._read(resume)
        if request is None:
            return
        self.request = request
        if not resume:
            self.query_one(LossPlot).clear_points()
            self.query_one("#previews", Gallery).show([])
            self._shown_previews = []
        self.show_warnings([])
        self.query_one(JobStatus).start(("resuming " if resume else "training ") + request.token)
        self._busy(True)
        backend = self.backend
        start_job(self, "train", lambda progress: backend.train(request, progress), important=True)
        self._poll = self.set_interval(PREVIEW_POLL_S, self.guard(self._poll_previews, "showing previews"))

    def action_resume(self) -> None:
        self.action_start(resume=True)

    def cancel_jobs(self) -> bool:
        return cancel_job(self, "train")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"start": self.action_start, "resume": self.action_resume, "cancel": self.action_cancel}
        if event.button.id in actions:
            actions[event.button.id]()

    def show_warnings(self, warnings: list[str]) -> None:
        """Warnings about this run (one picture, a multi-piece initializer…), one line each, above the plot."""
        self.warnings = list(warnings)
        label = self.query_one("#train-warnings", Label)
        label.update(plain("\n".join(f"⚠ {w}" for w in warnings)))
        label.display = bool(warnings)

    @on(JobNote)
    def _note(self, message: JobNote) -> None:
        self.show_warnings([*self.warnings, message.text])
        self.notify(message.text, title="Training warning", severity="warning", timeout=10)

    # ------------------------------------------------------------------ job messages
    def _busy(self, busy: bool) -> None:
        self.query_one("#start", Button).disabled = busy
        self.query_one("#resume", Button).disabled = busy
        self.query_one("#cancel", Button).disabled = not busy
        if not busy and self._poll is not None:
            self._poll.stop()
            self._poll = None

    def _poll_previews(self) -> None:
        if self.request is None:
            return
        try:
            files = self.backend.previews(self.request)
        except Exception:  # noqa: BLE001 - previews are a nicety; never interrupt a run for them
            return
        newest = [str(p) for p in reversed(files)][:MAX_PREVIEWS]
        if newest != self._shown_previews:  # redraw only when a new picture arrived
            self._shown_previews = newest
            self.query_one("#previews", Gallery).show([(p, p.stem) for p in list(reversed(files))[:MAX_PREVIEWS]])

    @on(JobPhase)
    def _phase(self, message: JobPhase) -> None:
        self.query_one(JobStatus).phase(message.name)

    @on(JobProgress)
    def _progress(self, message: JobProgress) -> None:
        if message.losses:
            self.query_one(LossPlot).extend(message.losses)
        loss = f" · loss {message.losses[-1][1]:.4f}" if message.losses else ""
        self.query_one(JobStatus).step(message.step, message.total, loss)

    @on(JobFinished)
    def _finished(self, message: JobFinished) -> None:
        self._busy(False)
        self._poll_previews()
        self.query_one(JobStatus).done(f"done: {message.result} is in the library")
        self.notify(f"{message.result} trained and saved to the library", title="Train")

    @on(JobCancelled)
    def _cancelled(self, message: JobCancelled) -> None:
        self._busy(False)
        self.query_one(JobStatus).cancelled("cancelled · Resume (^r) continues from the last checkpoint")
        self.notify("training cancelled")

    @on(JobFailed)
    def _failed(self, message: JobFailed) -> None:
        self._busy(False)
        self.query_one(JobStatus).failed(f"failed: {describe(message.error)}")
        self.notify(describe(message.error), title="Training failed", severity="error")
