"""Nothing a concept, a file or an error holds can crash a screen (issue 14, item 5).

Every screen is opened on a library whose tokens, tags, image names, nearest tokens, map labels and error
messages are hostile strings: Rich/Textual markup (``[/]`` ends the app with MarkupError when parsed),
backslashes that escape the next tag, emoji, right-to-left script, a bidi override. Each is shown as
written. A handler, action or timer that raises becomes a message and the screen keeps working.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import textual  # noqa: F401 (in the test extra: missing is a failure, not a skip)

from ticraft_tui.widgets.thumbnail import set_image_mode  # noqa: E402

set_image_mode("halfcell")

from ticraft_tui.app import TicraftApp  # noqa: E402
from ticraft_tui.testing import HOSTILE, FakeModelBackend, make_library  # noqa: E402
from ticraft_tui.widgets.concept_list import ConceptList  # noqa: E402

#: Library tokens: markup, a trailing backslash (escapes the "[" of the next tag), emoji, RTL, bidi override.
TOKENS = ["[", "[/]", "<[b]bold>", "<[red]x[/red]>", "<x\\>", "<🎨🖌️>", "<שלום>", "<a\u202eb>",
          "<[@click=app.quit]q[/]>"]
ERROR = "bad [/] input [b]x\\"


def text(app: TicraftApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def until(pilot, predicate, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    app = pilot.app
    status = [str(w.render()) for w in app.screen.query("#status")]
    raise AssertionError(f"condition not reached; screen {type(app.screen).__name__}, status {status}, "
                         f"notes {[n.message for n in app.notes]}")


def unexpected(app: TicraftApp) -> list[str]:
    """Error messages other than the failures the test provokes: what a guard caught (a would-be crash)."""
    return [f"{n.title}: {n.message}" for n in app.notes if n.severity == "error" and n.message != ERROR]


@pytest.fixture
def backend(tmp_path: Path) -> FakeModelBackend:
    lib = make_library(tmp_path / "lib", len(TOKENS), tokens=TOKENS, seed_tags=("[/]", "🎨", "x\\"))
    return FakeModelBackend(lib, words=HOSTILE, steps=3, fail_message=ERROR)


def test_every_screen_shows_hostile_strings_as_written(backend: FakeModelBackend) -> None:
    async def go() -> None:
        app = TicraftApp(backend)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            # Library: the list, the detail pane, nearest tokens ("[" is the shipped <fair-doctor>'s), dialogs
            assert sorted(app.screen.query_one(ConceptList).tokens()) == sorted(TOKENS)
            await pilot.press("n")
            await until(pilot, lambda: "[/]" in text(app, "#neighbors") and "0.90" in text(app, "#neighbors"))
            assert "🎨🖌️" in text(app, "#neighbors") and "שלום" in text(app, "#neighbors")
            for _ in TOKENS:  # every concept's detail pane (meta, tags, image captions)
                await pilot.press("down")
                await pilot.pause(0.1)
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("t")  # the dialog's title holds the token
            await pilot.pause()
            await pilot.press("escape")
            await pilot.press("f5")  # help
            await pilot.pause()
            await pilot.press("escape")

            # Compose: completion of a hostile token, pickers holding them, generating, a hostile failure
            await pilot.press("2")
            screen = app.screen
            await pilot.press(*"a photo of <[b")
            await until(pilot, lambda: "<[b]bold>" in text(app, "#completions"))
            await pilot.press("right", "ctrl+g")
            await until(pilot, lambda: "done" in text(app, "#status"))
            screen.query_one("#interp-a").value = "<[red]x[/red]>"
            screen.query_one("#interp-b").value = "<x\\>"
            screen.query_one("#interp-template").value = "a [b]painting[/b] of {}"
            await pilot.press("ctrl+n")
            await until(pilot, lambda: "done: 5" in text(app, "#status"))  # 5 frames
            assert backend.calls[-1] == ("interpolate", ("<[red]x[/red]>", "<x\\>", 5, "a [b]painting[/b] of {}"))
            backend.fail = "generate"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "failed" in text(app, "#status"))
            assert ERROR in text(app, "#status") and any(n.message == ERROR for n in app.notes)

            # Train: a hostile token and initializer; a run that fails with a hostile message
            await pilot.press("f3")
            screen = app.screen
            screen.query_one("#images").value = str(backend.library.root.parent / ".lib-images")
            screen.query_one("#token").value = "<[/]new>"
            screen.query_one("#init").value = "[b]"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "<[/]new> is in the library" in text(app, "#status"))
            backend.fail = "train"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "failed" in text(app, "#status"))
            assert ERROR in text(app, "#status")

            # Map: hostile labels on the scatter and in the list, their nearest tokens
            backend.fail = None
            await pilot.press("f4")
            await pilot.press("ctrl+g")
            await until(pilot, lambda: " among " in text(app, "#status"))
            await pilot.press("down")
            await until(pilot, lambda: "Nearest tokens" in text(app, "#map-neighbors"))
            assert "[/]" in text(app, "#map-neighbors")
            backend.fail = "map"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "failed" in text(app, "#status"))

            # every message again, in the palette's Messages view
            await app.run_action("messages")
            await pilot.pause()
            await pilot.press("escape")
            assert app.is_running and not unexpected(app)

    asyncio.run(go())


def test_a_failing_handler_action_or_timer_is_a_message(backend: FakeModelBackend,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from ticraft_tui.screens.compose import ComposeScreen
    from ticraft_tui.screens.library import LibraryScreen

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(ERROR)

    monkeypatch.setattr(LibraryScreen, "action_tag", boom)  # an action (key t)
    monkeypatch.setattr(LibraryScreen, "_show_detail", boom)  # a timer (the debounced detail pane)
    monkeypatch.setattr(ComposeScreen, "on_button_pressed", boom)  # a message handler (a click)

    async def go() -> None:
        app = TicraftApp(backend)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("t")
            await until(pilot, lambda: any(n.title == "tag failed" for n in app.notes))
            await pilot.press("down")
            await until(pilot, lambda: any(n.title == "showing the concept failed" for n in app.notes))
            await pilot.press("2")
            await pilot.click("#generate")
            await until(pilot, lambda: any(n.title == "button pressed failed" for n in app.notes))
            assert all(n.message == ERROR for n in app.notes if n.severity == "error")
            # the screen still handles its keys and messages after the failure
            app.screen.query_one("#prompt").value = "a photo"
            await pilot.press("ctrl+g")
            await until(pilot, lambda: "done" in text(app, "#status"))
            assert app.is_running

    asyncio.run(go())
