"""One line that says honestly what a background job is doing: its phase, its steps, its ETA.

* idle, finished, failed or cancelled: no bar at all (a pulsing bar would claim work that is not happening),
  just the sentence;
* a phase without steps (loading a model, compiling UMAP): the phase's name and an indeterminate bar —
  something is happening, its length is unknown;
* steps: a determinate bar, ``step/total`` and an ETA measured from this phase's own steps (set-up time
  does not inflate it); it disappears the moment the job is cancelled.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from ..text import plain


def format_eta(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for an ETA.

    >>> format_eta(75), format_eta(3725)
    ('1:15', '1:02:05')
    """
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class JobStatus(Horizontal):
    """A progress bar (shown only while a job runs) and a status sentence (``#status``)."""

    DEFAULT_CSS = """
    JobStatus { height: 1; width: 1fr; }
    JobStatus ProgressBar { width: auto; max-width: 40; margin-right: 1; }
    JobStatus ProgressBar Bar { width: 20; }
    JobStatus #status { width: 1fr; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    JobStatus #status.-failed { color: $error; }
    """

    def __init__(self, idle: str = "idle", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._idle = idle
        self.phase_name = ""
        self.running = False
        self._first: tuple[float, int] | None = None  # (time, step) of this phase's first step

    def compose(self) -> ComposeResult:
        yield ProgressBar(id="progress", show_eta=False)
        yield Label(plain(self._idle), id="status", markup=False)

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False

    # ------------------------------------------------------------------ states
    def _say(self, text: str | Text, *, failed: bool = False) -> None:
        label = self.query_one("#status", Label)
        label.update(text if isinstance(text, Text) else plain(text))
        label.set_class(failed, "-failed")

    def _stop(self, text: str, *, failed: bool = False) -> None:
        self.running = False
        self.query_one(ProgressBar).display = False
        self._say(text, failed=failed)

    def start(self, text: str) -> None:
        """A job started; ``text`` says which (e.g. ``"generating 4 images"``)."""
        self.running = True
        self.phase(text)

    def phase(self, name: str) -> None:
        """The job entered a phase without known length yet: indeterminate bar, the phase's name."""
        if not self.running:
            return
        self.phase_name = name
        self._first = None
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self._say(f"{name}…")

    def step(self, step: int, total: int, extra: str = "") -> None:
        """Step ``step`` of ``total`` of the current phase is done."""
        if not self.running or not total:
            return
        now = time.monotonic()
        if self._first is None or step < self._first[1]:
            self._first = (now, step)
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(total=total, progress=step)
        t0, s0 = self._first
        eta = ""
        if step > s0 and step < total:
            eta = f" · ETA {format_eta((total - step) * (now - t0) / (step - s0))}"
        self._say(f"{self.phase_name}: step {step}/{total}{eta}{extra}")

    def done(self, text: str) -> None:
        self._stop(text)

    def failed(self, text: str) -> None:
        self._stop(text, failed=True)

    def cancelled(self, text: str = "cancelled") -> None:
        self._stop(text)

    def idle(self) -> None:
        self._stop(self._idle)
