"""Progress display for the CLI: Rich bars fed by ticraft's callbacks, and warnings as one yellow line each.

Third-party bars and notices (transformers' "Loading weights", diffusers' denoising bars) are switched off
where ticraft loads models (:func:`ticraft.models.load.quiet_model_libraries`), so these are the only ones.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.markup import escape

from ticraft.cli.common import console, err_console


class TrainProgress:
    """A Rich progress bar fed by the trainer's callback ``(step, total, loss, vectors)``."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> "TrainProgress":
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]training[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def callback(self, step: int, total: int, loss: float | None, vectors: Any) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task("train", total=total, loss="…", completed=0)
        fields = {"loss": f"{loss:.4f}"} if loss is not None else {}
        self._progress.update(self._task, completed=step, **fields)


class warnings_to:  # noqa: N801 - used like a function: `with warnings_to(err_console):`
    """Show Python warnings (e.g. 'upscaling small images') as one yellow line each."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __enter__(self) -> None:
        self._saved = warnings.showwarning

        def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
            self.target.print(f"[yellow]warning:[/] {escape(str(message))}")

        warnings.showwarning = show

    def __exit__(self, *exc: Any) -> None:
        warnings.showwarning = self._saved


@contextmanager
def log_to(target: Any, enabled: bool = True) -> Iterator[None]:
    """Show ticraft's INFO log (e.g. where a run started) as plain lines on ``target`` while the block runs.

    The core logs instead of printing so that Python users choose what they see; the CLI shows it. Printed through
    the console a Rich bar draws on, so the line lands above the bar.
    """
    if not enabled:
        yield
        return

    class _Console(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            target.print(escape(record.getMessage()))

    logger = logging.getLogger("ticraft")
    handler, level = _Console(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextmanager
def sampling_progress(label: str) -> Iterator[Any]:
    """A transient Rich bar fed by ``callback(step, total)``; ticraft's warnings are printed after, once each.

    Every :class:`~ticraft.errors.TicraftWarning` is shown (prompt budget, reproduction, guidance, …);
    third-party warnings raised while sampling stay out of ticraft's output.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ticraft.errors import TicraftWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TicraftWarning)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=None)

            def callback(step: int, total: int, *_: Any, **__: Any) -> None:
                bar.update(task, completed=step, total=total)

            yield callback
    shown = dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, TicraftWarning))
    for text in shown:
        console.print(f"[yellow]warning: {escape(text)}[/]")
