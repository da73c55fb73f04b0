"""Compose, Train and Map screens: background jobs, progress, cancellation, errors (fake model work).

FakeModelBackend drives the progress callback step by step with a small delay, so a job can be
cancelled halfway; the library underneath is real.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import textual  # noqa: F401 (in the test extra: missing is a failure, not a skip)

from ticraft_tui.widgets.thumbnail import set_image_mode  # noqa: E402

set_image_mode("halfcell")

from ticraft_tui.app import TicraftApp  # noqa: E402
from ticraft_tui.screens.compose import completions  # noqa: E402
from ticraft_tui.testing import FakeModelBackend, make_library  # noqa: E402
from ticraft_tui.widgets.loss_plot import LossPlot  # noqa: E402

SIZE = (120, 40)


def text(app: TicraftApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def until(pilot, predicate, timeout: float = 10.0) -> None:
    """Let the app run until ``predicate()`` holds (jobs finish on worker threads)."""
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached in time")


def test_completions() -> None:
    tokens = ["<red-ball>", "<blue>", "rex"]
    assert completions("a photo of <re", tokens) == ["<red-ball>", "<rex>"]
    assert completions("a photo of <red-ball> on", tokens) == []
    assert completions("<", tokens) == ["<red-ball>", "<blue>", "<rex>"]


def test_compose_generate_save_cancel_fail(tmp_path: Path) -> None:
    backend = FakeModelBackend(make_library(tmp_path / "lib", 3, images=False), step_delay=0.02, steps=5)

    async def go() -> None:
        app = TicraftApp(backend, start="compose")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            # completion: type "<re", accept the suggestion with →
            await pilot.press(*"a photo of <re")
            await until(pilot, lambda: "<red-ball>" in text(app, "#completions"))
            await pilot.press("right")
            assert screen.query_one("#prompt").value == "a photo of <red-ball>"
            screen.query_one("#count").value = "2"
            screen.query_one("#seed").value = "7"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: len(screen.images) == 2)
            request = backend.calls[-1][1]
            assert (request.prompt, request.seed, request.count) == ("a photo of <red-ball>", 7, 2)
            await until(pilot, lambda: len(screen.query_one("#gallery").children) == 2)
            await until(pilot, lambda: "done" in text(app, "#status"))
            # save to the concept named in the prompt
            assert screen.query_one("#save-to").value == "<red-ball>"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: len(backend.library.samples("<red-ball>")) == 2)
            # cancel halfway
            backend.step_delay, backend.steps = 0.1, 50
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "step" in text(app, "#status"))
            await pilot.press("escape")
            await until(pilot, lambda: "cancelled" in text(app, "#status"))
            assert not screen.query_one("#generate").disabled
            assert len(screen.images) == 2  # the earlier results stay
            # a failing job is a notification
            backend.step_delay, backend.steps, backend.fail = 0.0, 4, "generate"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "failed" in text(app, "#status"))
            assert any("fake generate failure" in n.message for n in app.notes)
            backend.fail = None
            # interpolation between two chosen concepts fills the gallery with the strip
            screen.query_one("#interp-a").value = "<blue-cube>"
            screen.query_one("#interp-b").value = "<striped-star>"
            screen.query_one("#frames").value = "4"
            await pilot.press("ctrl+n")
            await until(pilot, lambda: "done: 4" in text(app, "#status"))
            assert backend.calls[-1] == ("interpolate", ("<blue-cube>", "<striped-star>", 4, "a photo of {}"))

    asyncio.run(go())


def test_train_progress_cancel_resume(tmp_path: Path) -> None:
    lib = make_library(tmp_path / "lib", 2)
    images = lib.root.parent / f".{lib.root.name}-images"
    backend = FakeModelBackend(lib, step_delay=0.01)

    async def go() -> None:
        app = TicraftApp(backend, start="train")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            await pilot.press("ctrl+g")  # nothing filled in: a warning, no job
            await pilot.pause()
            assert any("fill in: images, token, initializer" in n.message for n in app.notes)
            screen.query_one("#images").value = str(images)
            screen.query_one("#token").value = "<new-thing>"
            screen.query_one("#init").value = "ball"
            screen.query_one("#steps").value = "12"
            screen.query_one("#preset").value = "fast"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "done" in text(app, "#status"))
            request = backend.calls[-1][1]
            assert (request.token, request.initializer, request.preset, request.steps, request.resume) == (
                "<new-thing>", "ball", "fast", 12, False)
            assert screen.query_one(LossPlot).steps == list(range(1, 13))
            assert backend.library.has("<new-thing>")
            # cancel, then resume
            backend.step_delay = 0.1
            screen.query_one("#steps").value = "100"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "step" in text(app, "#status"))
            await pilot.press("escape")
            await until(pilot, lambda: "cancelled" in text(app, "#status"))
            backend.step_delay = 0.0
            await pilot.press("ctrl+r")
            await until(pilot, lambda: "done" in text(app, "#status"))
            assert backend.calls[-1][1].resume is True
            # the resumed run restarts its steps (the fake from 1): the curve is replaced, not appended to
            assert screen.query_one(LossPlot).steps == list(range(1, 101))

    asyncio.run(go())


def test_map_pick_by_list_then_by_click(tmp_path: Path) -> None:
    backend = FakeModelBackend(make_library(tmp_path / "lib", 3, images=False))

    async def go() -> None:
        app = TicraftApp(backend, start="map")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "3 concepts" in text(app, "#status"))
            points, plot = screen.query_one("#points"), screen.query_one("MapPlot")
            assert points.option_count == 3
            # ↑↓ in the list
            await pilot.press("down")
            await until(pilot, lambda: "Nearest tokens" in text(app, "#map-neighbors"))
            picked = plot.selected
            assert picked in ("<blue-cube>", "<red-ball>", "<striped-star>")
            # a click on another concept's label on the scatter
            cells = plot.label_cells()
            assert cells, "no concept label found on the drawn canvas"
            label, (col, row, _width) = next((k, v) for k, v in sorted(cells.items()) if k != picked)
            assert plot.label_at(col + 1, row) == label and plot.label_at(col + 40, row + 40) is None
            # pilot offsets are from the widget's outer edge; label cells from its content's
            await pilot.click("MapPlot", offset=(col + 1 + plot.content_region.x - plot.region.x,
                                                 row + plot.content_region.y - plot.region.y))
            await until(pilot, lambda: plot.selected == label and "Nearest tokens" in text(app, "#map-neighbors"))
            assert points.get_option_at_index(points.highlighted).id == label

    asyncio.run(go())


def test_map_labels_cut_by_the_frame_are_still_found() -> None:
    from types import SimpleNamespace

    from ticraft_tui.widgets.scatter import MapPlot

    plot = MapPlot()
    plot.points = [SimpleNamespace(kind="concept", label=name, x=0, y=0) for name in ("<fair-doctor>", "<zorb>")]
    plot._lines = ["title", "  │      <fair-doc│", "  │ <zorb>        │"]
    assert plot.label_cells() == {"<fair-doctor>": (9, 1, 9), "<zorb>": (4, 2, 6)}
    assert plot.label_at(12, 1) == "<fair-doctor>" and plot.label_at(5, 2) == "<zorb>"
    assert plot.label_at(3, 3) == "<zorb>"  # near the start of a label, within the click radius
    plot.points = [SimpleNamespace(kind="concept", label=name, x=0, y=0) for name in ("<cat-toy>", "<car-toy>")]
    plot._lines = ["title", "  │      <ca│", "  │ <car-toy>  │"]
    assert plot.label_cells() == {"<car-toy>": (4, 2, 9)}  # the cut "<ca" is ambiguous, so not clickable
