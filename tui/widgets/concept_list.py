"""The library's concept table: one row per entry, keyed by token."""

from __future__ import annotations

from typing import Any, Sequence

from textual.widgets import DataTable

COLUMNS = ("Token", "Family", "Vec", "Tags", "Steps")


class ConceptList(DataTable[str]):
    """A DataTable of library entries. Row keys are tokens, so ``RowHighlighted.row_key.value`` is one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)

    def on_mount(self) -> None:
        self.add_columns(*COLUMNS)

    def show(self, entries: Sequence[Any]) -> None:
        """Replace the rows, keeping the cursor on the same token when it is still listed."""
        keep = self.current_token()
        self.clear()
        for e in entries:
            steps = "" if e.steps is None else str(e.steps)
            self.add_row(e.token, e.family or "?", str(e.num_vectors), ", ".join(e.tags), steps, key=e.token)
        tokens = [e.token for e in entries]
        if keep in tokens:
            self.move_cursor(row=tokens.index(keep))

    def current_token(self) -> str | None:
        """The token under the cursor (None when empty)."""
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - cursor outside the table after a clear
            return None
        return key.value
