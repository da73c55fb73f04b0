"""SVG snapshots of the main screens (pytest-textual-snapshot).

Stable by construction: half-cell image renderer, fixed terminal size, a library with fixed dates,
fake model work (deterministic pictures and losses), paths shown relative. Update with
``pytest tests/test_tui_snapshots.py --snapshot-update`` after a deliberate UI change and review the SVGs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_textual_snapshot  # noqa: F401 (in the test extra: missing is a failure, not a skip)

from ticraft_tui.widgets.thumbnail import set_image_mode  # noqa: E402

set_image_mode("halfcell")

from ticraft_tui.app import TicraftApp  # noqa: E402
from ticraft_tui.testing import FakeModelBackend, make_library  # noqa: E402

SIZE = (80, 24)  # the smallest terminal every screen must work in (issue 14)


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeModelBackend:
    monkeypatch.chdir(tmp_path)
    lib = make_library(tmp_path / "lib", 5)
    shutil.copytree(tmp_path / ".lib-images", tmp_path / "imgs")
    return FakeModelBackend(lib)


async def settle(pilot) -> None:
    """Wait for every worker and the resulting redraws; then remove what depends on timing (toasts that
    may have expired on a slow machine, the blinking cursor)."""
    from textual.widgets import Input

    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.1)
    await pilot.app.workers.wait_for_complete()
    pilot.app.clear_notifications()
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def test_library_snapshot(snap_compare, backend: FakeModelBackend) -> None:
    async def before(pilot) -> None:
        pilot.app.screen.sub_title = "lib"
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(TicraftApp(backend), terminal_size=SIZE, run_before=before)


def test_compose_snapshot(snap_compare, backend: FakeModelBackend) -> None:
    async def before(pilot) -> None:
        screen = pilot.app.screen
        await pilot.press(*"a photo of <red-ball> on a green background")
        screen.query_one("#count").value = "3"
        await pilot.press("ctrl+g")
        await settle(pilot)

    assert snap_compare(TicraftApp(backend, start="compose"), terminal_size=SIZE, run_before=before)


def test_train_snapshot(snap_compare, backend: FakeModelBackend) -> None:
    async def before(pilot) -> None:
        screen = pilot.app.screen
        screen.query_one("#images").value = "imgs"
        screen.query_one("#token").value = "<new-thing>"
        screen.query_one("#init").value = "ball"
        screen.query_one("#steps").value = "40"
        await pilot.press("ctrl+g")
        await settle(pilot)

    assert snap_compare(TicraftApp(backend, start="train"), terminal_size=SIZE, run_before=before)


def test_map_snapshot(snap_compare, backend: FakeModelBackend) -> None:
    async def before(pilot) -> None:
        await pilot.press("ctrl+g")
        await settle(pilot)
        await pilot.press("down")
        await settle(pilot)

    assert snap_compare(TicraftApp(backend, start="map"), terminal_size=SIZE, run_before=before)
