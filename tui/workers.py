"""Run ticraft's long loops in thread workers and report back with messages.

ticraft reports progress through ``callback(step, total, loss, vectors)`` from whatever thread runs the
loop. :func:`start_job` runs a function in a Textual thread worker and hands it a :class:`Reporter`: such
a callback, plus :meth:`Reporter.phase` to name a stretch without steps ("loading model"). Each call
becomes a message posted to the widget that started the job (``post_message`` is thread-safe, so the UI
thread never blocks).

Cancelling is immediate for the UI: :func:`cancel_job` posts :class:`JobCancelled` at once and the job no
longer counts as running, whatever the thread is doing (a model load cannot be interrupted). The thread
stops at its next step or phase, where the reporter raises :class:`Cancelled`; anything it returns after
being cancelled is dropped.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, TypeVar

from textual.message import Message
from textual.widget import Widget
from textual.worker import Worker, WorkerState, get_current_worker

T = TypeVar("T")

#: Minimum seconds between progress messages: a fast loop must not flood the UI thread.
PROGRESS_INTERVAL = 0.05
#: Attribute set on a worker once its outcome message is posted (it no longer counts as running).
_DONE = "_ticraft_job_done"
#: Attribute marking jobs worth asking about before quitting (training, generating, maps).
_IMPORTANT = "_ticraft_job_important"
_claim_lock = threading.Lock()


class Cancelled(Exception):
    """Raised from a progress callback to stop a ticraft loop the user cancelled."""


class JobMessage(Message):
    """Base of the job messages; ``job`` is the name given to :func:`start_job`."""

    def __init__(self, job: str) -> None:
        super().__init__()
        self.job = job


class JobProgress(JobMessage):
    """Progress of a running job. ``losses`` holds every (step, loss) since the last message."""

    def __init__(self, job: str, step: int, total: int, losses: list[tuple[int, float]]) -> None:
        super().__init__(job)
        self.step = step
        self.total = total
        self.losses = losses


class JobPhase(JobMessage):
    """A running job started a stretch of work called ``name`` (``"loading model"``…)."""

    def __init__(self, job: str, name: str) -> None:
        super().__init__(job)
        self.name = name


class JobNote(JobMessage):
    """A running job has a warning worth showing: ``text``."""

    def __init__(self, job: str, text: str) -> None:
        super().__init__(job)
        self.text = text


class JobFinished(JobMessage):
    """A job returned ``result``."""

    def __init__(self, job: str, result: Any) -> None:
        super().__init__(job)
        self.result = result


class JobFailed(JobMessage):
    """A job raised ``error`` (shown as a message, never a crash)."""

    def __init__(self, job: str, error: BaseException) -> None:
        super().__init__(job)
        self.error = error


class JobCancelled(JobMessage):
    """A job stopped because the user cancelled it."""


def _claim(worker: Worker[Any]) -> bool:
    """True exactly once per worker: whoever gets it (the thread finishing, or a cancel) posts the outcome."""
    with _claim_lock:
        if getattr(worker, _DONE, False):
            return False
        setattr(worker, _DONE, True)
        return True


class Reporter:
    """The ``callback(step, total, loss, vectors)`` handed to ticraft (throttled, cancellable), with
    :meth:`phase` for stretches of work without steps."""

    def __init__(self, owner: Widget, job: str, worker: Worker[Any]) -> None:
        self.owner, self.job, self.worker = owner, job, worker
        self.pending: list[tuple[int, float]] = []
        self.last_sent = 0.0

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user cancelled this job (call it between long stretches)."""
        if self.worker.is_cancelled:
            raise Cancelled(self.job)

    def phase(self, name: str) -> None:
        self.check()
        self.owner.post_message(JobPhase(self.job, name))

    def note(self, text: str) -> None:
        if not self.worker.is_cancelled:
            self.owner.post_message(JobNote(self.job, text))

    def __call__(self, step: int, total: int, loss: float | None = None, vectors: Any = None) -> None:
        self.check()
        if loss is not None:
            self.pending.append((int(step), float(loss)))
        now = time.monotonic()
        if now - self.last_sent >= PROGRESS_INTERVAL or step >= total:
            self.last_sent = now
            losses, self.pending = self.pending, []
            self.owner.post_message(JobProgress(self.job, int(step), int(total), losses))


def start_job(owner: Widget, job: str, fn: Callable[[Reporter], T], *, important: bool = False) -> Worker[None]:
    """Run ``fn(reporter)`` in a thread worker named ``job``; a second job of that name replaces the first.

    Outcome messages (:class:`JobFinished`, :class:`JobFailed`, :class:`JobCancelled`) go to ``owner``.
    ``important`` jobs make Ctrl+Q ask before quitting (see :func:`running_jobs`).
    """

    def body() -> None:
        worker = get_current_worker()
        report = Reporter(owner, job, worker)
        outcome: JobMessage
        try:
            result = fn(report)
        except Cancelled:
            outcome = JobCancelled(job)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            # A loop may wrap our Cancelled in its own error: a cancelled worker's failure is a cancel.
            outcome = JobCancelled(job) if worker.is_cancelled else JobFailed(job, exc)
        else:
            if report.pending and not worker.is_cancelled:
                owner.post_message(JobProgress(job, 0, 0, report.pending))
            outcome = JobCancelled(job) if worker.is_cancelled else JobFinished(job, result)
        # Claimed before the UI hears of it: a new job started right after the outcome arrives must not be
        # refused as "already running" while this thread is still winding down.
        if _claim(worker):
            owner.post_message(outcome)

    worker = owner.run_worker(body, name=job, group=job, thread=True, exclusive=True, exit_on_error=False)
    setattr(worker, _IMPORTANT, important)
    return worker


def cancel_job(owner: Widget, job: str) -> bool:
    """Cancel the running job named ``job`` started by ``owner``; True if there was one.

    :class:`JobCancelled` is posted right away; the thread stops at its next step or phase.
    """
    found = False
    for worker in _jobs(owner, job):
        worker.cancel()
        if _claim(worker):
            owner.post_message(JobCancelled(job))
        found = True
    return found


def job_running(owner: Widget, job: str) -> bool:
    """Whether ``owner`` has a pending or running job named ``job``."""
    return bool(_jobs(owner, job))


def running_jobs(app_node: Widget | Any) -> list[str]:
    """Names of the important jobs running anywhere in the app (what quitting would stop)."""
    return [w.name for w in _live(app_node) if getattr(w, _IMPORTANT, False)]


def _live(node: Any) -> list[Worker[Any]]:
    live = (WorkerState.PENDING, WorkerState.RUNNING)
    return [w for w in node.workers if w.state in live and not w.is_cancelled and not getattr(w, _DONE, False)]


def _jobs(owner: Widget, job: str) -> list[Worker[Any]]:
    # owner.workers is the app-wide manager: keep only this widget's live workers of that group.
    return [w for w in _live(owner) if w.node is owner and w.group == job]
