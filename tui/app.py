"""The Textual app: four screens as modes (Library, Compose, Train, Map), help, command palette.

The app owns the :class:`~ticraft_tui.protocol.Backend` (a :class:`~ticraft_tui.backend.RealBackend`, or a
test double) that every screen calls; it never touches ticraft itself. Screens other than the library are
imported on first visit so that startup only pays for the library listing.

Keys that work everywhere, text fields included: F1–F4 switch screens, F5 opens help, Escape leaves a
field, Ctrl+P opens the command palette, Ctrl+Q quits (asking first while a job runs). An exception in any
action becomes an error message (see :mod:`ticraft_tui.guard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

from .commands import TicraftCommands
from .guard import GuardedHandlers, report_failure
from .modes import SCREEN_TITLES, screen_class
from .protocol import Backend
from .widgets import thumbnail  # noqa: F401 - textual-image must probe the terminal before Textual starts
from .workers import running_jobs


@dataclass(frozen=True)
class Note:
    """One notification shown in this session (toasts vanish; the log keeps them)."""

    message: str
    title: str
    severity: str


def _factory(mode: str) -> Callable[[], Screen[Any]]:
    return lambda: screen_class(mode)()


class TicraftApp(GuardedHandlers, App[None]):
    """ticraft's terminal UI.

    Args:
        backend: what the screens call (a :class:`~ticraft_tui.backend.RealBackend` in real use).
        start: the first screen (``library``, ``compose``, ``train`` or ``map``).
    """

    TITLE = "ticraft"
    CSS_PATH = "app.tcss"
    MODES = {mode: _factory(mode) for mode in SCREEN_TITLES}
    DEFAULT_MODE = "library"
    COMMANDS = App.COMMANDS | {TicraftCommands}
    BINDINGS = [
        Binding("1,f1", "mode('library')", "Library", key_display="1", show=False),
        Binding("2,f2", "mode('compose')", "Compose", key_display="2", show=False),
        Binding("3,f3", "mode('train')", "Train", key_display="3", show=False),
        Binding("4,f4", "mode('map')", "Map", key_display="4", show=False),
        Binding("question_mark,f5", "help", "Help", key_display="? F5"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, backend: Backend, start: str = "library") -> None:
        super().__init__()
        self.backend: Backend = backend
        self._start = start
        self.notes: list[Note] = []  # every notification, oldest first (see action_messages)

    def on_mount(self) -> None:
        if self._start != self.DEFAULT_MODE:
            self.switch_mode(self._start)

    async def _dispatch_action(self, namespace: DOMNode, action_name: str, params: Any) -> bool:
        # Every action of every screen and widget passes here (key bindings, the palette, clicks): one guard.
        try:
            return await super()._dispatch_action(namespace, action_name, params)
        except Exception as exc:  # noqa: BLE001 - an action's failure is a message, never an exit
            report_failure(self, exc, action_name.replace("_", " "))
            return True

    async def action_quit(self) -> None:
        """Quit; while a job (training, generating, a map) runs, ask first."""
        from .screens.dialogs import ConfirmDialog

        jobs = running_jobs(self)
        if not jobs:
            self.exit()
            return
        if isinstance(self.screen, ConfirmDialog):
            return
        names = " and ".join(sorted(set(jobs)))

        def answer(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(ConfirmDialog(f"{names} is still running. Quit and stop it?", yes="Quit"), answer)

    async def action_mode(self, mode: str) -> None:
        """Switch to one of the four screens."""
        if self.current_mode != mode:
            await self.switch_mode(mode)

    async def run_in_mode(self, mode: str, action: str) -> None:
        """Switch to ``mode`` and run one of its screen's actions (used by the command palette)."""
        await self.action_mode(mode)
        await self.screen.run_action(action)

    async def action_compose_with(self, token: str) -> None:
        """Open Compose with ``token`` added to the prompt."""
        await self.action_mode("compose")
        self.screen.insert_token(token)  # type: ignore[attr-defined]

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Show a toast and keep it in :attr:`notes`.

        Markup is always off: messages carry error texts and paths ("[Errno 2] …", "<token>") that
        must show as written, and a malformed tag must never turn a notification into a crash.
        """
        self.notes.append(Note(str(message), title, str(severity)))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def action_messages(self) -> None:
        """Show every notification of this session (errors vanish from the corner after a few seconds)."""
        from .screens.help import HelpScreen

        def line(n: Note) -> str:  # code spans: messages hold <tokens> and paths Markdown would eat
            text = (f"{n.title}: " if n.title else "") + n.message.replace("\n", " · ").replace("`", "'")
            return f"- **{n.severity}** `{text}`"

        lines = ["# Messages", ""] + [line(n) for n in reversed(self.notes)]
        self.push_screen(HelpScreen("\n".join(lines) if self.notes else "# Messages\n\nNone yet.", intro=False))

    def action_help(self) -> None:
        from .screens.help import HelpScreen, describe_bindings  # Markdown is slow to import: on demand

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(describe_bindings(self.screen, self)))
