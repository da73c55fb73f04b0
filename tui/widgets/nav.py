"""The row of screen tabs under the header: shows where you are, switches screens by click (or 1–4)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Tab, Tabs

SCREENS = (("library", "Library"), ("compose", "Compose"), ("train", "Train"), ("map", "Map"))


class NavTabs(Tabs):
    """Tabs for the four screens; ``active`` is the screen this bar sits on."""

    DEFAULT_CSS = """
    NavTabs { height: 2; }
    """
    can_focus = False  # the number keys switch screens; the bar need not steal Tab focus

    def __init__(self, active: str, **kwargs: Any) -> None:
        tabs = [Tab(f"{i} {title}", id=f"nav-{mode}") for i, (mode, title) in enumerate(SCREENS, 1)]
        super().__init__(*tabs, active=f"nav-{active}", **kwargs)
        self._home = f"nav-{active}"

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        tab_id = event.tab.id or ""
        if tab_id != self._home:
            self.active = self._home  # this bar always shows its own screen; the app switches
            self.app.call_later(self.app.run_action, f"mode({tab_id.removeprefix('nav-')!r})")
