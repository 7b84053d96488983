"""The bottom line of every screen: the keys that work where the focus is.

Textual's ``Footer`` rebuilds itself, one child widget per key, every time the bindings change,
which is every time the focus moves. Each rebuild applies the stylesheet to a dozen new widgets
and lays the screen out again; ``bench/tui.py`` measured that as most of the cost of opening and
closing an event (~45 widget mounts per press). This bar draws the same line as one widget: a
change of bindings is a repaint of one row, and nothing when the keys shown did not change.
"""

from __future__ import annotations

from typing import NamedTuple

from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget

from mpsandbox.tui.screens.keys import BACK, SCREEN_ID_PREFIX


class Shown(NamedTuple):
    key: str
    display: str
    description: str
    enabled: bool
    #: A key that switches screens (1…9, 0): these fold into one entry when space is short.
    is_screen: bool
    #: Help or Quit: shown on every screen, at any width.
    essential: bool = False


#: The actions the bar always shows: Help (which lists every other key) and Quit. Where
#: their usual key is taken (``?`` and ``q`` type into a text field), another key bound to
#: them is shown instead (``f1``, ``ctrl+q``), even one the bindings do not show.
_ESSENTIAL = ("help", "quit")


def _needed(entries: list[Shown]) -> int:
    """Cells the entries take (the palette key's entry counts too: it is drawn at the right
    edge when there is room)."""
    return sum(len(e.display) + len(e.description) + 3 for e in entries)


class KeyBar(Widget, can_focus=False):
    """Looks like Textual's footer (same theme variables); a click presses the key."""

    COMPONENT_CLASSES = {"key-bar--key", "key-bar--description", "key-bar--disabled"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        .key-bar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .key-bar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .key-bar--disabled {
            text-style: dim;
        }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        #: Each key shown, in order.
        self._keys: tuple[Shown, ...] = ()
        #: (first column, last column + 1, key) of each key as drawn, for clicks.
        self._spans: list[tuple[int, int, str]] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is not self.screen:
            return
        keys = self._shown(screen)
        if keys != self._keys:
            self._keys = keys
            self.refresh()

    def _shown(self, screen: Screen) -> tuple[Shown, ...]:
        """One entry per action (the first key bound to it), as Textual's footer shows them."""
        app = self.app
        seen: set[str] = set()
        palette: Shown | None = None
        back: Shown | None = None
        keys: list[Shown] = []
        #: Where the app's own keys begin (the screen's keys come before them).
        app_keys = None
        for key, active in screen.active_bindings.items():
            binding = active.binding
            display = app.get_key_display(binding)
            if key == app.COMMAND_PALETTE_BINDING and app.ENABLE_COMMAND_PALETTE:
                palette = Shown(key, display, "palette", active.enabled, False)
                continue
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            is_screen = (binding.id or "").startswith(SCREEN_ID_PREFIX)
            essential = binding.action in _ESSENTIAL
            shown = Shown(key, display, binding.description, active.enabled, is_screen, essential)
            if binding.id == BACK:
                back = shown  # Esc, wherever a screen declares it: last of the screen's keys
                continue
            if app_keys is None and active.node is app:
                app_keys = len(keys)
            keys.append(shown)
        if back is not None:
            keys.insert(len(keys) if app_keys is None else app_keys, back)
        for action in _ESSENTIAL:
            if action in seen:
                continue
            for key, active in screen.active_bindings.items():
                if active.binding.action == action and active.enabled:
                    seen.add(action)
                    display = app.get_key_display(active.binding)
                    description = active.binding.description or action.title()
                    keys.append(Shown(key, display, description, True, False, True))
                    break
        if palette is not None:
            keys.append(palette)
        return tuple(keys)

    def _fitted(self, width: int) -> list[Shown]:
        """The entries to draw: all of them when they fit; otherwise the screen keys become
        one entry (1…0 screens) that opens the help, where every screen is listed, so no
        key is ever silently cut off the end of the line."""
        entries = list(self._keys)
        screens = [e for e in entries if e.is_screen]
        if _needed(entries) > width and len(screens) >= 2:
            collapsed = Shown(
                "question_mark",
                f"{screens[0].display}…{screens[-1].display}",
                "screens",
                True,
                True,
            )
            first = entries.index(screens[0])
            rest = [e for e in entries if not e.is_screen]
            entries = [*rest[:first], collapsed, *rest[first:]]
        # Still too long: the screen's own keys give way (last first), never Help and Quit,
        # which must be findable on every screen at any width.
        while _needed(entries) > width:
            droppable = [e for e in entries if not e.essential]
            if not droppable:
                break
            entries.remove(droppable[-1])
        return entries

    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-bar--key")
        description_style = self.get_component_rich_style("key-bar--description")
        dim = self.get_component_rich_style("key-bar--disabled")
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        self._spans = []
        palette = self.app.COMMAND_PALETTE_BINDING
        tail = None
        for key, display, description, enabled, *_ in self._fitted(self.size.width):
            if key == palette:
                # Textual's footer keeps the palette key at the right edge.
                tail = (key, Text.assemble("▏", (display, key_style), f" {description} "))
                continue
            start = line.cell_len
            line.append(f" {display} ", key_style if enabled else key_style + dim)
            line.append(f"{description} ", description_style if enabled else dim)
            self._spans.append((start, line.cell_len, key))
        if tail is not None:
            key, text = tail
            gap = self.size.width - line.cell_len - text.cell_len
            if gap > 0:
                line.append(" " * gap)
                self._spans.append((line.cell_len, line.cell_len + text.cell_len, key))
                line.append_text(text)
        return line

    def on_resize(self) -> None:
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                event.stop()
                self.app.simulate_key(key)
                return
