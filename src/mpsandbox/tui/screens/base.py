"""What the data screens share: re-reading when the store or the overrides change."""

from __future__ import annotations

from textual import on
from textual.widgets import DataTable

from mpsandbox.tui.messages import OverridesChanged, StoreChanged
from mpsandbox.tui.screens.keys import KeyedScreen


class ReloadingScreen(KeyedScreen):
    """A screen that shows store data: it re-reads on new events, on a reset, when the
    overrides change and when it comes back into view (screens of other modes are not told
    while hidden). Subclasses implement ``action_reload``.

    A subclass that must prepare for a reload handles the message too (``@on(StoreChanged)``):
    Textual runs its handler first, then this one; ``message.prevent_default()`` in the
    subclass's handler replaces the reload."""

    def action_reload(self) -> None:
        raise NotImplementedError

    @on(StoreChanged)
    @on(OverridesChanged)
    def _reload_for_news(self) -> None:
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()


def selected_row_key(table: DataTable) -> str | None:
    """The key of the row under the cursor (None for an empty table, or while rows are
    being replaced and the cursor points past them)."""
    if not table.row_count:
        return None
    try:
        return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
    except Exception:
        return None
