"""Modal dialogs: confirm, ask for text, export options. Each dismisses with its answer (None = cancel)."""

from __future__ import annotations

from typing import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from ..guard import GuardedHandlers


class _Dialog(GuardedHandlers, ModalScreen):
    """Shared look and the Escape binding."""

    DEFAULT_CSS = """
    _Dialog { align: center middle; }
    _Dialog > Vertical { width: 64; max-width: 100%; height: auto; max-height: 100%; border: thick $accent;
                         background: $surface; padding: 1 2; }
    _Dialog .buttons { height: auto; align-horizontal: right; margin-top: 1; }
    _Dialog .buttons Button { margin-left: 1; }
    _Dialog Label.hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(_Dialog):
    """Yes/No question; dismisses with True or None."""

    BINDINGS = [Binding("y", "yes", "Yes"), Binding("n", "cancel", "No")]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question, self.yes = question, yes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="no")
                yield Button(self.yes, id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer has the focus

    def action_yes(self) -> None:
        self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(True if event.button.id == "yes" else None)


class _FormDialog(_Dialog):
    """A form with Cancel/OK buttons: Enter in a field or OK submits (``_finish``), Cancel dismisses with None."""

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._finish()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._finish()
        else:
            self.dismiss(None)

    def _finish(self) -> None:
        raise NotImplementedError


class TextDialog(_FormDialog):
    """One line of text; Enter submits, dismisses with the stripped text (None when cancelled/empty)."""

    def __init__(self, title: str, value: str = "", hint: str = "") -> None:
        super().__init__()
        self.title_text, self.value, self.hint = title, value, hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, markup=False)
            yield Input(self.value, id="text")
            if self.hint:
                yield Label(self.hint, classes="hint", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("OK", id="ok", variant="primary")

    def _finish(self) -> None:
        text = self.query_one("#text", Input).value.strip()
        self.dismiss(text or None)


class ExportDialog(_FormDialog):
    """Destination path and layout; dismisses with ``(path, layout)``."""

    def __init__(self, token: str, layouts: Sequence[str], default_path: str) -> None:
        super().__init__()
        self.token, self.layouts, self.default_path = token, list(layouts), default_path

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Export {self.token}", markup=False)
            yield Input(self.default_path, id="path", placeholder="file or folder")
            yield Select([(name, name) for name in self.layouts], value=self.layouts[0], allow_blank=False,
                         id="layout")
            yield Label("A folder (created when missing) gets <token>.safetensors / .pt inside it.", classes="hint",
                        markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Export", id="ok", variant="primary")

    def _finish(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        layout = str(self.query_one("#layout", Select).value)
        self.dismiss((path, layout) if path else None)
