"""A failure inside a handler becomes a message in the UI, never an exit.

Textual ends the whole app when a message handler, action, timer or callback raises. The TUI shows
ticraft's errors, whatever a concept, a file or a model holds, so every such entry point goes through one
of these guards:

* :class:`GuardedHandlers` (mixed into every ticraft screen and widget) catches what its message
  handlers raise;
* ``TicraftApp`` catches what any action raises (one place: Textual's action dispatch);
* :func:`guarded` wraps timers, ``call_after_refresh`` callbacks and dialog callbacks.

A caught exception is reported with :func:`report_failure`: an error notification naming what failed
(the app also keeps it in its message log) and the traceback in Textual's log.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from typing import Any, Callable, TypeVar

from textual.message import Message

F = TypeVar("F", bound=Callable[..., Any])


def describe(exc: BaseException) -> str:
    """One line for ``exc``: its message, or its type when the message is empty.

    >>> describe(ValueError("bad [b]input[/]")), describe(KeyError())
    ('bad [b]input[/]', 'KeyError')
    """
    text = str(exc).strip()
    return text if text else type(exc).__name__


def report_failure(node: Any, exc: BaseException, what: str = "") -> None:
    """Show ``exc`` as an error notification on ``node``'s app (never raises)."""
    try:
        app = node.app
        app.log.error("".join(traceback.format_exception(exc)))
        title = f"{what} failed" if what else f"unexpected {type(exc).__name__}"
        app.notify(describe(exc), title=title, severity="error", timeout=10)
    except Exception:  # noqa: BLE001, S110 - the reporter itself must never take the app down
        pass


def guarded(node: Any, fn: F, what: str = "") -> F:
    """``fn`` (sync or async) with its exceptions reported on ``node`` instead of raised."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                report_failure(node, exc, what)
                return None

        return run_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            report_failure(node, exc, what)
            return None

    return run  # type: ignore[return-value]


class GuardedHandlers:
    """Mixin for a Textual widget or screen: an exception in one of its message handlers is reported, and
    the widget keeps handling messages (Textual would stop its message loop and exit the app).

    Overrides ``_on_message``, the one method through which Textual calls every handler of a node
    (``tests/test_tui_hostile.py`` checks that this still holds for the installed Textual).
    """

    async def _on_message(self, message: Message) -> None:
        try:
            await super()._on_message(message)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001
            report_failure(self, exc, _handler_title(message))


def _handler_title(message: Message) -> str:
    return message.handler_name.removeprefix("on_").replace("_", " ")
