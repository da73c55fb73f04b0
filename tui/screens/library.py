"""Library screen: filter the concept list; see a concept's metadata, norms, neighbours and images; manage it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Label, Static

from ..guard import describe
from ..protocol import ConceptInfo, NeighborRows
from ..text import counted, join, lines, plain
from ..widgets.concept_list import ConceptList
from ..widgets.nav import NavTabs
from ..widgets.thumbnail import Gallery
from ..workers import JobFailed, JobFinished, JobPhase, start_job
from .base import TicraftScreen
from .dialogs import ConfirmDialog, ExportDialog, TextDialog

if TYPE_CHECKING:  # pragma: no cover - typing only (no library import at startup beyond the backend's)
    from pathlib import Path

    from ticraft.library import Entry

#: Thumbnails shown per gallery in the detail pane (a concept may have hundreds of samples).
MAX_THUMBS = 8
#: Meta keys not worth a line in the detail pane (long lists, already shown elsewhere).
HIDDEN_META = {"loss", "losses", "loss_curve", "images", "image_hashes", "vectors"}


def parse_query(text: str) -> dict[str, str | None]:
    """Split the filter box into ``search()`` arguments: ``tag:x family:y free text``.

    >>> parse_query("tag:style red family:toy")
    {'text': 'red', 'tag': 'style', 'family': 'toy'}
    """
    out: dict[str, str | None] = {"text": None, "tag": None, "family": None}
    words = []
    for word in text.split():
        key, sep, value = word.partition(":")
        if sep and key in ("tag", "family") and value:
            out[key] = value
        else:
            words.append(word)
    out["text"] = " ".join(words) or None
    return out


class LibraryScreen(TicraftScreen):
    """The concept library: list on the left, details of the highlighted concept on the right."""

    BINDINGS = [
        Binding("slash", "focus_search", "Filter"),
        Binding("enter", "open", "Open", show=False),
        Binding("t", "tag", "Tag"),
        Binding("r", "rename", "Rename"),
        Binding("e", "export", "Export"),
        Binding("d,delete", "delete", "Delete"),
        Binding("c", "compose", "Compose"),
        Binding("n", "neighbors", "Nearest"),
        Binding("w", "words", "Words", show=False),  # issue 16: ticraft words (PEZ) beside the nearest tokens
        Binding("ctrl+r", "reload", "Reload", show=False),
        Binding("escape", "escape", "Leave field", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.current: str | None = None  # token shown in the detail pane
        self._total = 0  # concepts in the library at the last full listing
        self._painted = False
        self._problems: list[str] = []
        self._broken: set[str] = set()  # tokens the health check flagged: left out of the list
        self._detail_timer: Any = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavTabs("library")
        with Horizontal():
            with Vertical(id="lib-left"):
                yield Input(placeholder="filter: text  tag:NAME  family:NAME   (/)", id="search")
                yield ConceptList(id="concepts")
                yield Label("", id="count", markup=False)
            with VerticalScroll(id="detail"):
                # Most telling first: on a small terminal the nearest tokens must not sit below the fold.
                yield Static("Select a concept.", id="meta")
                yield Static("", id="neighbors")
                yield Static("", id="norms")
                yield Static("", id="extra")
                yield Label("Training images", classes="section")
                yield Gallery(empty="no training images", id="images")
                yield Label("Samples", classes="section")
                yield Gallery(empty="no samples", id="samples")
        yield Footer(compact=True, show_command_palette=False)  # 80 columns: the screen's keys and help first

    def on_mount(self) -> None:
        self.title = "ticraft · Library"
        root = self.backend.library_root()
        self.sub_title = str(root)
        self.refresh_list(check=True)
        if not self.backend.library_exists():
            self.notify(f"{root} does not exist: check --library, or train or import a concept to create it",
                        title="No library here", severity="warning", timeout=15)
        self.call_after_refresh(self.guard(self._first_paint_done))
        self.query_one(ConceptList).focus()

    def home(self) -> Widget | None:
        return self.query_one(ConceptList)

    # ------------------------------------------------------------------ listing
    def refresh_list(self, *, check: bool = False) -> None:
        """Re-read the library's index, re-run the filter and redraw the list (synchronous: used at start and
        after changes, where the list must be current before the next key). ``check`` also runs the health
        check of every entry, in a worker: it opens each file, which 10,000 concepts must not wait for."""
        query = parse_query(self.query_one("#search", Input).value)
        try:
            everything = self._healthy(self.backend.entries())
            entries = self._healthy(self.backend.search(**query)) if any(query.values()) else everything
        except Exception as exc:  # noqa: BLE001 - a broken library folder is a message, not a crash
            self.notify(describe(exc), title="Library", severity="error")
            everything, entries = [], []
        self._total = len(everything)
        self._show_entries(entries, any(query.values()))
        if check and self._painted:
            self._check_health()

    def _check_health(self) -> None:
        backend = self.backend
        start_job(self, "problems", lambda _: backend.problems())

    def _healthy(self, entries: list[Any]) -> list[Any]:
        return [e for e in entries if e.token not in self._broken] if self._broken else entries

    def _show_problems(self, found: list[tuple[str | None, str]]) -> None:
        problems = [sentence for _, sentence in found]
        self._problems = problems
        broken = {token for token, _ in found if token is not None}
        if broken != self._broken:
            self._broken = broken
            self.refresh_list()
        if problems:
            self.notify("\n".join(problems[:5]), title=counted(len(problems), "library problem"), severity="warning")
        self._show_count(self.query_one(ConceptList).row_count, bool(self.query_one("#search", Input).value.strip()))

    def _show_count(self, shown: int, filtered: bool) -> None:
        line = f"{shown} of {self._total} concepts" if filtered else f"{self._total} concepts"
        if self._problems:
            line += f" · {counted(len(self._problems), 'problem')}: {self._problems[0]}"
        self.query_one("#count", Label).update(plain(line))

    def _show_entries(self, entries: list[Any], filtered: bool) -> None:
        table = self.query_one(ConceptList)
        table.show(entries)
        self._show_count(len(entries), filtered)
        if not entries:
            self._show_empty()
        elif table.current_token() != self.current:
            self._schedule_detail()

    @on(Input.Changed, "#search")
    def _filter_changed(self, event: Input.Changed) -> None:
        # Searching re-reads the library: off the UI thread, so typing never waits for the disk.
        query, backend = parse_query(event.value), self.backend
        start_job(self, "search", lambda _: (event.value, backend.search(**query) if any(query.values())
                                             else backend.entries()))

    @on(Input.Submitted, "#search")
    def _filter_done(self) -> None:
        self.query_one(ConceptList).focus()

    @on(ConceptList.Highlighted)
    def _row_highlighted(self) -> None:
        self._schedule_detail()

    @on(ConceptList.Selected)
    def _row_selected(self) -> None:
        self.action_open()

    def _schedule_detail(self) -> None:
        # Debounced: holding the arrow key must not read every embedding on the way. The first read
        # imports torch (a second or so in a worker): it waits until the first screen has been drawn.
        if not self._painted:
            return
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(0.08, self.guard(self._show_detail, "showing the concept"))

    def _first_paint_done(self) -> None:
        # After the first frame: the health check opens every entry (a thread, but it holds the GIL a while).
        self._painted = True
        self._check_health()
        self._schedule_detail()

    # ------------------------------------------------------------------ detail pane
    def _show_empty(self) -> None:
        self.current = None
        if not self._total and not self.backend.library_exists():
            message = join((f"{self.backend.library_root()}", "bold"), " does not exist.\n",
                           "Check --library (or $TICRAFT_LIBRARY); training or importing a concept creates it.")
        else:
            message = plain("The library is empty: train or import a concept." if not self._total
                            else "No concept matches.")
        self.query_one("#meta", Static).update(message)
        for wid in ("#norms", "#neighbors", "#extra"):
            self.query_one(wid, Static).update("")
        self.query_one("#images", Gallery).show([])
        self.query_one("#samples", Gallery).show([])

    def _show_detail(self) -> None:
        token = self.query_one(ConceptList).current_token()
        if token is None or token == self.current:
            return  # already shown (a change to the library resets ``current`` to force a redraw)
        self.current = token
        self.query_one("#neighbors", Static).update(plain("Nearest tokens: press Enter or n to compute.", "dim"))
        backend = self.backend

        def load(_: Any) -> tuple[str, Entry, ConceptInfo, list[Path], list[Path]]:
            entry = backend.entry(token)
            return token, entry, backend.info(token), backend.images(token), backend.samples(token)

        start_job(self, "detail", load)

    @on(JobFinished)
    def _job_finished(self, message: JobFinished) -> None:
        if message.job == "search":
            value, entries = message.result
            if value == self.query_one("#search", Input).value:  # a newer keystroke supersedes this answer
                self._show_entries(self._healthy(entries), any(parse_query(value).values()))
        elif message.job == "problems":
            self._show_problems(list(message.result))
        elif message.job == "detail":
            token, entry, info, images, samples = message.result
            if token == self.current:
                self._render_detail(entry, info, images, samples)
        elif message.job == "neighbors":
            token, rows = message.result
            if token == self.current:
                neighbors = self.query_one("#neighbors", Static)
                neighbors.update(format_neighbors(rows))
                self.query_one("#detail").scroll_to_widget(neighbors, animate=False, top=False)
        elif message.job == "words":
            token, line = message.result
            if token == self.current:
                self.query_one("#neighbors", Static).update(join(("Words (PEZ, 4 real tokens)", "bold"), "\n",
                                                                  (line, "")))

    @on(JobPhase)
    def _job_phase(self, message: JobPhase) -> None:
        if message.job in ("neighbors", "words"):
            title = "Nearest tokens" if message.job == "neighbors" else "Words (PEZ)"
            self.query_one("#neighbors", Static).update(join((title, "bold"), "\n", (f"{message.name}…", "dim")))

    @on(JobFailed)
    def _job_failed(self, message: JobFailed) -> None:
        if message.job in ("neighbors", "words"):
            # Shown in place (not a toast): a missing model should not nag on every concept.
            title = "Nearest tokens" if message.job == "neighbors" else "Words (PEZ)"
            self.query_one("#neighbors", Static).update(
                join((title, "bold"), "\n", (f"unavailable: {describe(message.error)}", "red")))
        else:
            self.notify(describe(message.error), title="Library", severity="error")

    def _render_detail(self, entry: Entry, info: ConceptInfo, images: list[Path], samples: list[Path]) -> None:
        self.query_one("#meta", Static).update(format_meta(entry))
        self.query_one("#norms", Static).update(format_norms(info.norms))
        self.query_one("#extra", Static).update(format_extra(info))
        self.query_one("#images", Gallery).show([(p, p.name) for p in images[:MAX_THUMBS]])
        self.query_one("#samples", Gallery).show([(p, p.name) for p in samples[-MAX_THUMBS:]])

    # ------------------------------------------------------------------ actions
    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_reload(self) -> None:
        self.refresh_list(check=True)
        self.notify("Library reloaded")

    def action_open(self) -> None:
        """Show everything about the highlighted concept, nearest tokens included (loads the model once)."""
        token = self.query_one(ConceptList).current_token()
        if token is None:
            return
        if token != self.current:
            self._show_detail()
        self.action_neighbors()

    def action_neighbors(self) -> None:
        self._side_job("neighbors", "Nearest tokens", "computing", self.backend.neighbors)

    def action_words(self) -> None:
        """``ticraft words`` for the highlighted concept: 4 real words that encode like it (shown as the neighbours)."""
        self._side_job("words", "Words (PEZ)", "searching", self.backend.hard_prompt)

    def _side_job(self, kind: str, title: str, verb: str, work: Callable[..., object]) -> None:
        """Run ``work(token, progress=…)`` for the highlighted concept in the neighbours pane (one job kind each)."""
        token = self.query_one(ConceptList).current_token()
        if token is None:
            return
        self.query_one("#neighbors", Static).update(
            join((title, "bold"), "\n", (f"{verb} with model {self.backend.model_spec}…", "dim")))
        start_job(self, kind, lambda progress: (token, work(token, progress=progress)))

    async def action_compose(self) -> None:
        token = self.query_one(ConceptList).current_token()
        if token is not None:
            await self.app.run_action(f"compose_with({token!r})")

    def action_tag(self) -> None:
        token = self.query_one(ConceptList).current_token()
        if token is None:
            return

        def done(text: str | None) -> None:
            if text is None:
                return
            add = [w for w in text.replace(",", " ").split() if not w.startswith("-")]
            remove = [w[1:] for w in text.replace(",", " ").split() if w.startswith("-") and len(w) > 1]
            add = [w[1:] if w.startswith("+") else w for w in add]
            self._change(lambda: self.backend.tag(token, add=add, remove=remove), f"Tags of {token} updated")

        tags = " ".join(self.backend.entry(token).tags)
        self.app.push_screen(TextDialog(f"Tags for {token}", "", f"add: name  remove: -name   (now: {tags or 'none'})"),
                             self.guard(done, "tagging"))

    def action_rename(self) -> None:
        token = self.query_one(ConceptList).current_token()
        if token is None:
            return

        def done(new: str | None) -> None:
            if new and new != token:
                self._change(lambda: self.backend.rename(token, new), f"Renamed {token} to {new}", select=new)

        self.app.push_screen(TextDialog(f"Rename {token} to", token), self.guard(done, "renaming"))

    def action_export(self) -> None:
        token = self.query_one(ConceptList).current_token()
        if token is None:
            return

        def done(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            path, layout = answer
            try:
                files = self.backend.export(token, path, layout)
            except Exception as exc:  # noqa: BLE001
                self.notify(describe(exc), title="Export failed", severity="error")
                return
            self.notify("\n".join(str(f) for f in files), title=f"Exported {token} ({layout})")

        self.app.push_screen(ExportDialog(token, self.backend.export_layouts(), "."), self.guard(done, "export"))

    def action_delete(self) -> None:
        token = self.query_one(ConceptList).current_token()
        if token is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._change(lambda: self.backend.remove(token), f"Deleted {token}")

        self.app.push_screen(ConfirmDialog(f"Delete {token} with its images and samples? This cannot be undone.",
                                           yes="Delete"), self.guard(done, "deleting"))

    def _change(self, fn: Callable[[], object], success: str, select: str | None = None) -> None:
        """Run a library change; notify; refresh the list (cursor on ``select`` when given)."""
        try:
            fn()
        except Exception as exc:  # noqa: BLE001
            self.notify(describe(exc), title="Library", severity="error")
            return
        self.notify(success)
        self.current = None
        self.refresh_list()
        if select is not None:
            self.select_token(select)

    def select_token(self, token: str) -> None:
        """Move the cursor to ``token`` if it is listed."""
        self.query_one(ConceptList).move_to(token)  # False (and nothing moves) when the filter hides it


# ---------------------------------------------------------------------- formatting (pure, testable)
# Everything below builds Text from plain strings: tokens, tags, paths and meta values are never markup.
def format_meta(entry: Entry) -> Text:
    """What the library knows about the concept: token, family, tags, steps, origin."""
    rows = [join((entry.token, "bold"), "  ", (f"folder {entry.folder.name}/", "dim")),
            join("family ", (entry.family or "?", "bold"),
                 f" · {entry.num_vectors} vector{'' if entry.num_vectors == 1 else 's'} · dims {entry.dims_label}"),
            join("tags: ", ", ".join(entry.tags) if entry.tags else ("none", "dim")),
            plain(f"steps: {entry.steps if entry.steps is not None else '—'} · created {entry.created[:19] or '—'}")]
    if entry.initializer:
        rows.append(plain(f"initializer: {entry.initializer}"))
    if entry.source:
        rows.append(plain(f"source: {entry.source}"))
    if entry.sha256:
        rows.append(plain(f"sha256: {entry.sha256[:16]}…"))
    return lines(rows)


def format_extra(info: ConceptInfo) -> Text:
    """The training metadata worth a line (short values only)."""
    rows: list[Text] = []
    extra = {k: v for k, v in info.meta.items()
             if k not in HIDDEN_META and k not in ("steps", "step", "initializer", "source")
             and isinstance(v, (str, int, float, bool))}
    for key, value in sorted(extra.items())[:12]:
        rows.append(plain(f"{key}: {str(value)[:60]}"))
    return lines(rows)


def format_norms(norms: dict[str, list[float]]) -> Text:
    """One line per encoder: the L2 norm of each vector, with a bar for scale."""
    rows = [plain("Vector norms", "bold")]
    top = max((n for ns in norms.values() for n in ns), default=1.0) or 1.0
    for key, values in norms.items():
        for i, value in enumerate(values):
            bar = "█" * max(1, round(20 * value / top))
            rows.append(join(f"{key}[{i}] {value:7.3f} ", (bar, "cyan")))
    return lines(rows)


def format_neighbors(rows: NeighborRows) -> Text:
    """One line per row (``mean``, ``vector i``): its nearest vocabulary tokens with their cosine."""
    out = [plain("Nearest tokens", "bold")]
    for label, matches in rows:
        line = join((label, "bold"), ": ")
        for i, (token, score) in enumerate(matches):
            line.append_text(join(", " if i else "", token, " ", (f"{score:.2f}", "dim")))
        out.append(line)
    return lines(out)
