"""Compose screen: write a prompt with ``<concept>`` completion, generate in the background, keep the results."""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.suggester import Suggester
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, Input, Label, Select

from ..guard import describe
from ..protocol import GenerateRequest
from ..text import counted, plain
from ..widgets.job_status import JobStatus
from ..widgets.nav import NavTabs
from ..widgets.thumbnail import Gallery
from ..workers import JobCancelled, JobFailed, JobFinished, JobPhase, JobProgress, cancel_job, job_running, start_job
from .base import TicraftScreen

#: The concept token being typed at the end of the prompt: "<" then no space or bracket.
_PARTIAL = re.compile(r"<[^<>\s]*$")
_CONCEPT = re.compile(r"<[^<>\s]+>")
DEFAULT_INTERP_TEMPLATE = "a photo of {}"


def bracketed(token: str) -> str:
    """``red-ball`` → ``<red-ball>``; tokens already in brackets are unchanged."""
    return token if token.startswith("<") and token.endswith(">") else f"<{token}>"


def completions(prompt: str, tokens: list[str]) -> list[str]:
    """Library tokens that complete the ``<partial`` at the end of ``prompt``.

    >>> completions("a photo of <re", ["<red-ball>", "<blue>", "<rex>"])
    ['<red-ball>', '<rex>']
    """
    m = _PARTIAL.search(prompt)
    if not m:
        return []
    partial = m.group(0).casefold()
    return [t for t in map(bracketed, tokens) if t.casefold().startswith(partial) and t.casefold() != partial]


class ConceptSuggester(Suggester):
    """Inline suggestion (accept with → or End) completing the concept token being typed."""

    def __init__(self, tokens: Any) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._tokens = tokens  # a callable: the library can change while the screen is open

    async def get_suggestion(self, value: str) -> str | None:
        found = completions(value, self._tokens())
        if not found:
            return None
        partial = _PARTIAL.search(value).group(0)  # type: ignore[union-attr]
        return value + found[0][len(partial):]


def template_prompt(template: str) -> str:
    """The interpolation template as ticraft wants it: ``{}`` where the concept goes (added at the end when
    missing; ``<concept>`` is accepted for it).

    >>> template_prompt("a painting of <concept> at dusk"), template_prompt("a photo of"), template_prompt("")
    ('a painting of {} at dusk', 'a photo of {}', 'a photo of {}')
    """
    text = template.strip().replace("<concept>", "{}")
    if not text:
        return DEFAULT_INTERP_TEMPLATE
    return text if "{}" in text else f"{text} {{}}"


def _int(text: str, default: int | None) -> int | None:
    text = text.strip()
    return int(text) if text else default


def _float(text: str, default: float | None) -> float | None:
    text = text.strip()
    return float(text) if text else default


class ComposeScreen(TicraftScreen):
    """Prompt, settings, Generate/Cancel, a gallery of results; save them, or interpolate two concepts with
    the interpolation's own template."""

    BINDINGS = [
        Binding("ctrl+g", "generate", "Generate", priority=True),
        Binding("ctrl+n", "interpolate", "Interpolate", priority=True),
        Binding("ctrl+s", "save", "Save to samples", priority=True),
        Binding("escape", "escape", "Cancel job"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.images: list[Any] = []
        self._token_cache: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavTabs("compose")
        with Vertical(id="compose-form"):
            with Horizontal(classes="row"):
                yield Label("Prompt", classes="field-label")
                yield Input(placeholder="a photo of <concept> on a green background", id="prompt",
                            suggester=ConceptSuggester(self._tokens), compact=True)
            yield Label("", id="completions", markup=False)
            with Horizontal(classes="row"):
                yield Label("Negative", classes="field-label")
                yield Input(placeholder="(optional)", id="negative", compact=True)
            with Horizontal(classes="row"):
                yield Label("Model", classes="field-label")
                yield Input(id="model", classes="wide", compact=True)
            with Horizontal(classes="row"):
                yield Label("Seed", classes="field-label")
                yield Input("0", id="seed", type="integer", classes="num", compact=True)
                yield Label("Steps")
                yield Input("", id="steps", type="integer", placeholder="auto", classes="num", compact=True)
                yield Label("Guid.")
                yield Input("", id="guidance", type="number", placeholder="auto", classes="num", compact=True)
                yield Label("Count")
                yield Input("1", id="count", type="integer", classes="num", compact=True)
            with Horizontal(classes="row"):
                yield Button("Generate ^g", id="generate", variant="primary", compact=True)
                yield Button("Cancel esc", id="cancel", variant="error", disabled=True, compact=True)
                yield Select([], prompt="save to…", id="save-to", compact=True)
                yield Button("Save ^s", id="save", compact=True)
            with Horizontal(classes="row"):
                yield Label("Interpolate", classes="field-label")
                yield Select([], prompt="from…", id="interp-a", compact=True)
                yield Select([], prompt="to…", id="interp-b", compact=True)
                yield Label("Frames")
                yield Input("5", id="frames", type="integer", classes="num", compact=True)
            with Horizontal(classes="row"):
                yield Label("Template", classes="field-label")
                yield Input(DEFAULT_INTERP_TEMPLATE, id="interp-template", classes="wide", compact=True,
                            placeholder="a photo of {}  ({} is where the concept goes)")
                yield Button("Interpolate ^n", id="interpolate", compact=True)
            yield JobStatus(id="job")
        yield Gallery(empty="Generated images appear here.", id="gallery")
        yield Footer(compact=True, show_command_palette=False)  # 80 columns: the screen's keys and help first

    def on_mount(self) -> None:
        self.title = "ticraft · Compose"
        self.query_one("#model", Input).value = self.backend.model_spec
        self._refresh_concepts()
        self.query_one("#prompt", Input).focus()

    def on_screen_resume(self) -> None:
        self._refresh_concepts()  # the library may have changed on another screen

    def home(self) -> Widget | None:
        return self.query_one("#generate", Button)

    def _tokens(self) -> list[str]:
        """Library tokens as of the last visit (re-read on every resume, not on every keystroke)."""
        return self._token_cache

    def _refresh_concepts(self) -> None:
        try:
            self._token_cache = self.backend.tokens()
        except Exception:  # noqa: BLE001 - no completion is better than a crash while typing
            self._token_cache = []
        options: list[tuple[Text, str]] = [(plain(t), t) for t in self._token_cache]  # tokens are text, not markup
        for sid in ("#save-to", "#interp-a", "#interp-b"):
            select = self.query_one(sid, Select)
            value = select.value
            select.set_options(options)  # type: ignore[arg-type]
            if value in self._token_cache:
                select.value = value

    # ------------------------------------------------------------------ prompt helpers
    def insert_token(self, token: str) -> None:
        """Append ``token`` to the prompt (used by Library's "Compose with")."""
        prompt = self.query_one("#prompt", Input)
        text = prompt.value.rstrip()
        token = bracketed(token)
        prompt.value = (f"{text} {token}" if text else f"a photo of {token}")
        prompt.cursor_position = len(prompt.value)
        prompt.focus()
        self._default_save_target()

    @on(Input.Changed, "#prompt")
    def _prompt_changed(self, event: Input.Changed) -> None:
        found = completions(event.value, self._tokens())
        self.query_one("#completions", Label).update(plain(("→ " + "  ".join(found[:8])) if found else ""))
        self._default_save_target()

    def _default_save_target(self) -> None:
        """Save target follows the first library concept named in the prompt, unless the user chose one."""
        select = self.query_one("#save-to", Select)
        known = {bracketed(t).casefold(): t for t in self._tokens()}
        for tok in _CONCEPT.findall(self.query_one("#prompt", Input).value):
            if tok.casefold() in known and select.is_blank():
                select.value = known[tok.casefold()]
                return

    def _request(self, prompt: str) -> GenerateRequest | None:
        """Read the settings; a bad field is a message and None."""
        q = lambda sid: self.query_one(sid, Input).value  # noqa: E731
        try:
            request = GenerateRequest(prompt, q("#negative").strip(), seed=_int(q("#seed"), 0) or 0,
                                      steps=_int(q("#steps"), None), guidance=_float(q("#guidance"), None),
                                      count=max(1, _int(q("#count"), 1) or 1))
        except ValueError as exc:
            self.notify(f"check the numbers: {exc}", title="Compose", severity="error")
            return None
        model = q("#model").strip()
        if model and model != self.backend.model_spec:
            self.backend.set_model(model)
        return request

    # ------------------------------------------------------------------ actions
    def action_generate(self) -> None:
        prompt = self.query_one("#prompt", Input).value.strip()
        if not prompt:
            self.notify("write a prompt first", title="Compose", severity="warning")
            return
        request = self._request(prompt)
        if request is None:
            return
        backend = self.backend
        self._start("generate", lambda progress: backend.generate(request, progress),
                    f"generating {counted(request.count, 'image')}")

    def action_interpolate(self) -> None:
        a, b = self.query_one("#interp-a", Select), self.query_one("#interp-b", Select)
        if a.is_blank() or b.is_blank():
            self.notify("choose the two concepts to interpolate between", title="Interpolate", severity="warning")
            return
        request = self._request(template_prompt(self.query_one("#interp-template", Input).value))
        if request is None:
            return
        try:
            frames = max(2, _int(self.query_one("#frames", Input).value, 5) or 5)
        except ValueError:
            frames = 5
        ta, tb, backend = str(a.value), str(b.value), self.backend
        self._start("interpolate", lambda progress: backend.interpolate(ta, tb, frames, request, progress),
                    f"interpolating {ta} → {tb} ({frames} frames)")

    def _start(self, job: str, fn: Any, status: str) -> None:
        if job_running(self, "generate") or job_running(self, "interpolate"):
            self.notify("a job is already running (Escape cancels it)", severity="warning")
            return
        self.query_one(JobStatus).start(status)
        self._busy(True)
        start_job(self, job, fn, important=True)

    def cancel_jobs(self) -> bool:
        return cancel_job(self, "generate") | cancel_job(self, "interpolate")

    def action_save(self) -> None:
        select = self.query_one("#save-to", Select)
        if not self.images:
            self.notify("nothing to save yet", title="Save", severity="warning")
            return
        if select.is_blank():
            self.notify("choose the concept whose samples receive the images", title="Save", severity="warning")
            return
        try:
            files = self.backend.add_samples(str(select.value), self.images)
        except Exception as exc:  # noqa: BLE001
            self.notify(describe(exc), title="Save failed", severity="error")
            return
        self.notify(f"{counted(len(files), 'image')} saved to {select.value}'s samples", title="Saved")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"generate": self.action_generate, "cancel": self.action_cancel, "save": self.action_save,
                   "interpolate": self.action_interpolate}
        if event.button.id in actions:
            actions[event.button.id]()

    # ------------------------------------------------------------------ job messages
    def _busy(self, busy: bool) -> None:
        self.query_one("#generate", Button).disabled = busy
        self.query_one("#interpolate", Button).disabled = busy
        self.query_one("#cancel", Button).disabled = not busy

    @on(JobPhase)
    def _phase(self, message: JobPhase) -> None:
        self.query_one(JobStatus).phase(message.name)

    @on(JobProgress)
    def _progress(self, message: JobProgress) -> None:
        self.query_one(JobStatus).step(message.step, message.total)

    @on(JobFinished)
    def _finished(self, message: JobFinished) -> None:
        self._busy(False)
        images = list(message.result or [])
        if message.job == "interpolate":
            n = len(images)
            captions = [f"t={i / max(1, n - 1):.2f}" for i in range(n)]
        else:
            seed = _int(self.query_one("#seed", Input).value, 0) or 0
            captions = [f"seed {seed + i}" for i in range(len(images))]
        self.images = images
        self.query_one("#gallery", Gallery).show(list(zip(images, captions, strict=True)))
        self.query_one(JobStatus).done(f"done: {counted(len(images), 'image')}")

    @on(JobCancelled)
    def _cancelled(self, message: JobCancelled) -> None:
        self._busy(False)
        self.query_one(JobStatus).cancelled(f"{message.job} cancelled")
        self.notify(f"{message.job} cancelled")

    @on(JobFailed)
    def _failed(self, message: JobFailed) -> None:
        self._busy(False)
        self.query_one(JobStatus).failed(f"{message.job} failed: {describe(message.error)}")
        self.notify(describe(message.error), title=f"{message.job} failed", severity="error")
