"""What every ticraft screen shares: the typed backend, guarded handlers, Escape that leaves a field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, cast

from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Select

from ..guard import GuardedHandlers, guarded
from ..protocol import Backend

if TYPE_CHECKING:  # pragma: no cover - typing only; the app imports the screens
    from ..app import TicraftApp


class TicraftScreen(GuardedHandlers, Screen[None]):
    """Base of the four screens.

    * :attr:`backend` is the app's :class:`~ticraft_tui.protocol.Backend`: the only way to ticraft.
    * A handler that raises shows an error message and the screen keeps working (:mod:`ticraft_tui.guard`).
    * Escape cancels the screen's running job (:meth:`cancel_jobs`) and leaves the text field it was typed
      in (focus goes to :meth:`home`), so the screen's keys work again.
    """

    @property
    def backend(self) -> Backend:
        return cast("TicraftApp", self.app).backend

    def guard(self, fn: Callable[..., Any], what: str = "") -> Callable[..., Any]:
        """``fn`` with its exceptions shown as messages: for timers and dialog callbacks."""
        return guarded(self, fn, what)

    def home(self) -> Widget | None:
        """The widget that gets the focus when Escape leaves a field (None: no focus)."""
        return None

    def action_escape(self) -> None:
        """Cancel the running job, if any, and leave the text field, if in one."""
        self.cancel_jobs()
        if isinstance(self.focused, (Input, Select)):
            target = self.home()
            if target is not None and target.focusable:
                target.focus()
            else:
                self.set_focus(None)

    def action_cancel(self) -> None:
        """Cancel the screen's running job."""
        self.cancel_jobs()

    def cancel_jobs(self) -> bool:
        """Cancel this screen's running jobs; True if there was one (screens with jobs override this)."""
        return False
