"""Keys that work everywhere and honest progress (issue 14, items 6 and 7), with fake model work.

A fake model load that ignores cancellation (``setup_gate``) stands in for the parts of a real job that cannot
be interrupted: the UI must still answer a cancel at once.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import textual  # noqa: F401 (in the test extra: missing is a failure, not a skip)

from ticraft_tui.widgets.thumbnail import set_image_mode  # noqa: E402

set_image_mode("halfcell")

from textual.widgets import Input, ProgressBar  # noqa: E402

from ticraft_tui.app import TicraftApp  # noqa: E402
from ticraft_tui.screens.dialogs import ConfirmDialog  # noqa: E402
from ticraft_tui.screens.help import HelpScreen  # noqa: E402
from ticraft_tui.testing import FakeModelBackend, make_library  # noqa: E402

SIZE = (80, 24)


def text(app: TicraftApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def bar_shown(app: TicraftApp) -> bool:
    return bool(app.screen.query_one(ProgressBar).display)


async def until(pilot, predicate, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    status = [str(w.render()) for w in pilot.app.screen.query("#status")]
    raise AssertionError(f"condition not reached; status {status}")


@pytest.fixture
def backend(tmp_path: Path) -> FakeModelBackend:
    return FakeModelBackend(make_library(tmp_path / "lib", 3, images=False))


def test_keys_inside_fields_and_help_lists_the_screen_first(backend: FakeModelBackend) -> None:
    async def go() -> None:
        app = TicraftApp(backend, start="compose")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.focused, Input) and app.focused.id == "prompt"
            await pilot.press("1", "?")  # typed into the field, not taken as keys
            assert app.current_mode == "compose" and app.focused.value == "1?"
            await pilot.press("f1")
            assert app.current_mode == "library"
            await pilot.press("f2")
            assert app.current_mode == "compose" and isinstance(app.focused, Input)
            await pilot.press("f5")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            table = app.screen.table
            assert table.startswith("## On this screen (Compose)")
            own, everywhere = table.split("## Everywhere")
            assert own.splitlines()[4] == "| `Ctrl+G` | Generate |"
            for generic in ("cursor", "Delete character", "Paste", "Focus Next"):
                assert generic not in table
            assert table.count("| Library |") == 1 and "`1 F1`" in everywhere and "`Ctrl+Q`" in everywhere
            assert table.count("Generate") == 1
            await pilot.press("f5")
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen)
            # Escape leaves the field: the number keys switch screens again
            await pilot.press("escape")
            assert not isinstance(app.focused, Input)
            await pilot.press("3")
            assert app.current_mode == "train"

    asyncio.run(go())


def test_ctrl_q_asks_while_a_job_runs(backend: FakeModelBackend) -> None:
    gate = threading.Event()
    backend.setup_gate = gate

    async def go() -> None:
        app = TicraftApp(backend, start="compose")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.screen.query_one("#prompt").value = "a photo"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "loading model" in text(app, "#status"))
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            assert "generate is still running" in str(app.screen.query_one("Label").render())
            await pilot.press("n")  # keep working
            await pilot.pause()
            assert app.is_running and not isinstance(app.screen, ConfirmDialog)
            await pilot.press("ctrl+q", "y")
            await pilot.pause()
            assert not app.is_running
        gate.set()

    asyncio.run(go())

    async def idle_quit() -> None:
        app = TicraftApp(backend)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+q")  # nothing running: no question
            await pilot.pause()
            assert not app.is_running

    asyncio.run(idle_quit())


def test_progress_is_honest(backend: FakeModelBackend) -> None:
    gate = threading.Event()
    backend.setup_gate = gate

    async def go() -> None:
        app = TicraftApp(backend, start="compose")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            assert not bar_shown(app) and text(app, "#status") == "idle"  # no pulsing bar when idle
            screen.query_one("#prompt").value = "a photo"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "loading model fake…" in text(app, "#status"))  # the phase is named
            assert bar_shown(app)
            # cancel during set-up (the fake load ignores it, as a real one does): the UI answers now
            await pilot.press("escape")
            await pilot.pause()
            assert text(app, "#status") == "generate cancelled" and not backend.setup_done.is_set()
            assert not bar_shown(app) and not screen.query_one("#generate").disabled
            gate.set()  # the load ends; the thread stops at its first step and its result is dropped
            await until(pilot, lambda: backend.setup_done.is_set())
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert text(app, "#status") == "generate cancelled" and not screen.images
            # a failure leaves no bar either
            backend.fail = "generate"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "failed" in text(app, "#status"))
            assert not bar_shown(app)
            backend.fail = None

            # Train: ticraft's warnings about the run, named phases, steps with an ETA that disappears on cancel
            backend.step_delay = 0.05
            backend.notes = ["training on one picture (a.png): the word tends to copy it"]
            await pilot.press("f3")
            screen = app.screen
            screen.query_one("#images").value = "imgs"
            screen.query_one("#token").value = "<t>"
            screen.query_one("#init").value = "ball"
            screen.query_one("#steps").value = "400"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "training: step" in text(app, "#status") and "ETA" in text(app, "#status"))
            assert text(app, "#train-warnings") == "⚠ training on one picture (a.png): the word tends to copy it"
            await pilot.press("escape")
            await pilot.pause()
            assert "cancelled" in text(app, "#status") and "ETA" not in text(app, "#status")
            assert not bar_shown(app)

    asyncio.run(go())
