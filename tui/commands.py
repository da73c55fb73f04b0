"""The command palette's ticraft provider: every screen switch and every screen action, searchable."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .modes import SCREEN_TITLES, screen_class

if TYPE_CHECKING:  # pragma: no cover - typing only; the app imports this module
    from .app import TicraftApp

Command = tuple[str, str, Callable[[], Any]]


def all_commands(app: "TicraftApp") -> Iterator[Command]:
    """(title, help, callback) for every action the app offers, on any screen."""
    for mode, title in SCREEN_TITLES.items():
        yield f"Go to {title}", f"switch to the {title} screen", partial(app.run_action, f"mode({mode!r})")
    yield "Help", "show every key (?)", partial(app.run_action, "help")
    yield "Messages", "every notification of this session, newest first", partial(app.run_action, "messages")
    for mode, title in SCREEN_TITLES.items():
        for binding in screen_class(mode).BINDINGS:
            if isinstance(binding, tuple) or not binding.description:
                continue
            keys = binding.key_display or binding.key
            yield (f"{title}: {binding.description}", f"key {keys} on the {title} screen",
                   partial(app.run_in_mode, mode, binding.action))


class TicraftCommands(Provider):
    """Lists :func:`all_commands`; fuzzy-matches their titles."""

    async def discover(self) -> Hits:
        for title, help_text, callback in all_commands(self.app):  # type: ignore[arg-type]
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in all_commands(self.app):  # type: ignore[arg-type]
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
