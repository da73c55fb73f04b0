"""Library screen, help and command palette, driven with Textual's Pilot on a real temporary library.

Model work (neighbours) comes from FakeModelBackend; test_tui_real.py repeats the key paths with a real model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import textual  # noqa: F401 (in the test extra: missing is a failure, not a skip)

from ticraft_tui.widgets.thumbnail import set_image_mode  # noqa: E402

set_image_mode("halfcell")  # stable output, no terminal probing

from ticraft_tui.app import TicraftApp  # noqa: E402
from ticraft_tui.screens.library import LibraryScreen, parse_query  # noqa: E402
from ticraft_tui.testing import FakeModelBackend, make_library  # noqa: E402
from ticraft_tui.widgets.concept_list import ConceptList  # noqa: E402

SIZE = (120, 40)


@pytest.fixture
def backend(tmp_path: Path) -> FakeModelBackend:
    return FakeModelBackend(make_library(tmp_path / "lib", 5))


async def settle(pilot) -> None:
    """Let workers (search, detail) finish and their results render."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def rows(app: TicraftApp) -> list[str]:
    return app.screen.query_one(ConceptList).tokens()


def text(app: TicraftApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def test_parse_query() -> None:
    assert parse_query("tag:style red family:toy") == {"text": "red", "tag": "style", "family": "toy"}
    assert parse_query("") == {"text": None, "tag": None, "family": None}
    assert parse_query("tag: x") == {"text": "tag: x", "tag": None, "family": None}


def test_filter_and_open(backend: FakeModelBackend) -> None:
    async def go() -> None:
        app = TicraftApp(backend)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, LibraryScreen)
            assert rows(app) == ["<blue-cube>", "<dotted-ring>", "<green-kite>", "<red-ball>", "<striped-star>"]
            await pilot.press("slash", *"tag:style")
            await settle(pilot)
            assert rows(app) == ["<blue-cube>", "<dotted-ring>"]
            assert "2 of 5" in text(app, "#count")
            await pilot.press("enter")  # back to the list
            assert isinstance(app.focused, ConceptList)
            await pilot.press("enter")  # open: details + nearest tokens
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert "<blue-cube>" in text(app, "#meta") and "initializer: cube" in text(app, "#meta")
            assert "clip[1]" in text(app, "#norms")
            assert "vector 1:" in text(app, "#neighbors")
            assert ("neighbors", "<blue-cube>") in backend.calls
            assert len(app.screen.query_one("#images").children) == 2  # the two training thumbnails
            await pilot.press("down")
            await pilot.pause(0.2)
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert "<dotted-ring>" in text(app, "#meta")
            # free text matches tokens; no match says so
            app.screen.query_one("#search").value = "zzz"
            await settle(pilot)
            assert rows(app) == [] and "No concept matches" in text(app, "#meta")

    asyncio.run(go())


def test_tag_rename_delete_export(backend: FakeModelBackend, tmp_path: Path) -> None:
    async def go() -> None:
        app = TicraftApp(backend)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            lib = backend.library
            # tag: add one, remove the existing one
            await pilot.press("t", *"fav -style", "enter")
            await pilot.pause()
            assert lib.entry("<blue-cube>").tags == ("fav",)
            # rename
            await pilot.press("r")
            app.screen.query_one("#text").value = "<cobalt-cube>"
            await pilot.press("enter")
            await pilot.pause()
            assert lib.has("<cobalt-cube>") and not lib.has("<blue-cube>")
            assert "<cobalt-cube>" in rows(app)
            # export to a folder
            out = tmp_path / "out"
            out.mkdir()
            await pilot.press("e")
            app.screen.query_one("#path").value = str(out)
            await pilot.press("enter")
            await pilot.pause()
            assert [p.suffix for p in out.iterdir()] == [".safetensors"]
            # delete asks first: No keeps it, Yes removes it
            assert app.screen.query_one(ConceptList).move_to("<red-ball>")
            await pilot.press("d")
            await pilot.press("n")
            await pilot.pause()
            assert lib.has("<red-ball>")
            await pilot.press("d", "y")
            await pilot.pause()
            assert not lib.has("<red-ball>") and "<red-ball>" not in rows(app)
            # a failing change is a notification, not a crash
            await pilot.press("r")
            app.screen.query_one("#text").value = "<green-kite>"  # already taken
            await pilot.press("enter")
            await pilot.pause()
            assert any(n.severity == "error" for n in app.notes)

    asyncio.run(go())


def test_help_and_command_palette(backend: FakeModelBackend) -> None:
    from ticraft_tui.commands import all_commands

    async def go() -> None:
        app = TicraftApp(backend)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            titles = [title for title, _, _ in all_commands(app)]
            for expected in ("Go to Compose", "Library: Delete", "Compose: Generate", "Train: Start",
                             "Map: Compute map", "Help"):
                assert expected in titles
            await pilot.press("question_mark")
            await pilot.pause()
            assert type(app.screen).__name__ == "HelpScreen"
            await pilot.press("escape")
            # run a command from the palette: switches screen and runs the action there
            await pilot.press("ctrl+p", *"Go to Map")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause()
            assert app.current_mode == "map"
            await pilot.press("1")
            assert app.current_mode == "library"

    asyncio.run(go())


def test_compose_with_from_library(backend: FakeModelBackend) -> None:
    async def go() -> None:
        app = TicraftApp(backend)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("c")
            await pilot.pause()
            assert app.current_mode == "compose"
            assert app.screen.query_one("#prompt").value == "a photo of <blue-cube>"

    asyncio.run(go())


def test_problems_are_reported(tmp_path: Path) -> None:
    lib = make_library(tmp_path / "lib", 2, images=False)
    (lib.root / "blue-cube" / "embedding.safetensors").write_bytes(b"garbage")
    (lib.root / "blue-cube" / "meta.json").write_text("{not json")

    async def go() -> None:
        app = TicraftApp(FakeModelBackend(lib))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)  # the health check runs in a worker
            assert rows(app) == ["<red-ball>"]
            assert "problem" in text(app, "#count")
            assert any(n.severity == "warning" for n in app.notes)

    asyncio.run(go())
