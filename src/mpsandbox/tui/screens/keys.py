"""The keys every screen of the registry shares, so that one key means one thing everywhere.

Esc always leads back: out of a text field (or any other widget) to the screen's home widget
(its main table, named by ``AUTO_FOCUS``), and from there to whatever the screen calls "back"
(:meth:`KeyedScreen.escape`). ``g``/``G`` are the top and bottom of the focused table or
pane on every screen. The binding ids (``table.top``, ``back``) are the names a keymap uses
to move these keys (see ``docs/keymap.md``).
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable

#: Binding ids of the shared keys (the event table uses the same ids for its own g/G).
TOP, BOTTOM, BACK = "table.top", "table.bottom", "back"
#: The ids of the keys that switch screens begin so (``screen.live``; see the registry).
SCREEN_ID_PREFIX = "screen."


class KeyedScreen(Screen):
    """A screen of the registry: shared keys, a home widget, and palette entries of its own."""

    BINDINGS = [
        Binding(
            "escape",
            "escape",
            "Back",
            show=False,
            id=BACK,
            tooltip="back: out of a text field to the table, then out of what is open",
        ),
        Binding("g", "first", "Top", show=False, id=TOP, tooltip="top of the table"),
        Binding("G", "last", "Bottom", show=False, id=BOTTOM, tooltip="bottom of the table"),
    ]

    @property
    def home(self):
        """The widget Esc returns to (the screen's ``AUTO_FOCUS``), or None."""
        if not self.AUTO_FOCUS:
            return None
        return next(iter(self.query(self.AUTO_FOCUS)), None)

    def focus_home(self) -> None:
        home = self.home
        if home is not None:
            home.focus()

    def action_escape(self) -> None:
        """Away from the home widget, Esc goes home; at home, it does the screen's own back."""
        home = self.home
        if home is not None and self.focused is not home:
            home.focus()
        else:
            self.escape()

    def escape(self) -> None:
        """What Esc does once the home widget has the focus (nothing, unless overridden)."""

    def action_first(self) -> None:
        self._to_end(first=True)

    def action_last(self) -> None:
        self._to_end(first=False)

    def _to_end(self, *, first: bool) -> None:
        widget = self.focused or self.home
        if isinstance(widget, DataTable):
            if widget.row_count:
                widget.move_cursor(row=0 if first else widget.row_count - 1)
        elif widget is not None:
            if first:
                widget.scroll_home(animate=False)
            else:
                widget.scroll_end(animate=False)

    def screen_commands(self) -> Iterable[SystemCommand]:
        """The screen's own palette entries (beside the app's)."""
        return ()

    def with_key(self, text: str, action: str) -> str:
        """``text (key)``: a palette entry's help with the key bound to ``action`` here, as
        the keymap has it (and without a key when none is bound)."""
        keys = [
            self.app.get_key_display(active.binding)
            for active in self.active_bindings.values()
            if active.binding.action == action
        ]
        return f"{text} ({' '.join(dict.fromkeys(keys))})" if keys else text
