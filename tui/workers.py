"""Run ticraft's long loops in thread workers and report back with messages.

ticraft reports progress through ``callback(step, total, loss, vectors)`` from whatever thread
runs the loop. :func:`start_job` runs a function in a Textual thread worker, hands it such a
callback, and turns each call into a :class:`JobProgress` message posted to the widget that
started the job (``post_message`` is thread-safe, so the UI thread never blocks). Cancelling the
worker makes the next callback raise :class:`Cancelled`, which is how ticraft loops are stopped.
"""

from __future__ import annotations

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


class JobFinished(JobMessage):
    """A job returned ``result``."""

    def __init__(self, job: str, result: Any) -> None:
        super().__init__(job)
        self.result = result


class JobFailed(JobMessage):
    """A job raised ``error`` (shown as a notification, never a crash)."""

    def __init__(self, job: str, error: BaseException) -> None:
        super().__init__(job)
        self.error = error


class JobCancelled(JobMessage):
    """A job stopped because the user cancelled it."""


class _Reporter:
    """The ``callback(step, total, loss, vectors)`` handed to ticraft: throttled, cancellable."""

    def __init__(self, owner: Widget, job: str, worker: Worker[Any]) -> None:
        self.owner, self.job, self.worker = owner, job, worker
        self.pending: list[tuple[int, float]] = []
        self.last_sent = 0.0

    def __call__(self, step: int, total: int, loss: float | None = None, vectors: Any = None) -> None:
        if self.worker.is_cancelled:
            raise Cancelled(self.job)
        if loss is not None:
            self.pending.append((int(step), float(loss)))
        now = time.monotonic()
        if now - self.last_sent >= PROGRESS_INTERVAL or step >= total:
            self.last_sent = now
            losses, self.pending = self.pending, []
            self.owner.post_message(JobProgress(self.job, int(step), int(total), losses))


def start_job(owner: Widget, job: str, fn: Callable[[Callable[..., None]], T]) -> Worker[None]:
    """Run ``fn(callback)`` in a thread worker named ``job``; a second job of that name replaces the first.

    Outcome messages (:class:`JobFinished`, :class:`JobFailed`, :class:`JobCancelled`) go to ``owner``.
    """

    def body() -> None:
        worker = get_current_worker()
        report = _Reporter(owner, job, worker)
        outcome: JobMessage
        try:
            result = fn(report)
        except Cancelled:
            outcome = JobCancelled(job)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a notification
            # A loop may wrap our Cancelled in its own error: a cancelled worker's failure is a cancel.
            outcome = JobCancelled(job) if worker.is_cancelled else JobFailed(job, exc)
        else:
            if report.pending:
                owner.post_message(JobProgress(job, 0, 0, report.pending))
            outcome = JobCancelled(job) if worker.is_cancelled else JobFinished(job, result)
        # Done before the UI hears of it: a new job started right after the outcome arrives must not
        # be refused as "already running" while this thread is still winding down.
        setattr(worker, _DONE, True)
        owner.post_message(outcome)

    return owner.run_worker(body, name=job, group=job, thread=True, exclusive=True, exit_on_error=False)


def cancel_job(owner: Widget, job: str) -> bool:
    """Cancel the running job named ``job`` started by ``owner``; True if there was one."""
    found = False
    for worker in _jobs(owner, job):
        worker.cancel()
        found = True
    return found


def job_running(owner: Widget, job: str) -> bool:
    """Whether ``owner`` has a pending or running job named ``job``."""
    return bool(_jobs(owner, job))


def _jobs(owner: Widget, job: str) -> list[Worker[Any]]:
    # owner.workers is the app-wide manager: keep only this widget's live workers of that group.
    live = (WorkerState.PENDING, WorkerState.RUNNING)
    return [w for w in owner.workers if w.node is owner and w.group == job and w.state in live
            and not w.is_cancelled and not getattr(w, _DONE, False)]
