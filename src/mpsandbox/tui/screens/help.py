"""Keys, screens, the filter language and the chaos spec, from the same lists the code
uses: the screen registry, each screen's ``BINDINGS`` (and its widgets'), the query module's
help and the chaos grammar. Keys are shown as the user's keymap has them."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from mpsandbox.chaos import EXAMPLES as CHAOS_EXAMPLES
from mpsandbox.chaos import SPEC_HELP as CHAOS_HELP
from mpsandbox.query import QUERY_EXAMPLES, QUERY_HELP
from mpsandbox.tui.screens import registry

Section = tuple[str, list[tuple[str, str]]]

#: Textual's own moves in a table (not ours to bind, listed once for people).
TABLE_MOVES = (
    "↑ ↓ j k PgUp PgDn",
    "move in a table (Home, End: first, last); moving stops following",
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q,f1", "dismiss", "Close")]

    def __init__(self, keymap: Mapping[str, str] | None = None, current: str | None = None):
        super().__init__()
        self.keymap = dict(keymap or {})
        #: The mode the help was opened from: its keys come first.
        self.current = current

    def key_sections(self) -> tuple[list[Section], list[Section], list[Section]]:
        """Every key the app has, generated: (the screens and the keys of every screen; this
        screen's keys; every other screen's), each section (title, [(keys, meaning)])."""
        app, keymap = self.app, self.keymap

        def rows(bindings: list[Binding]) -> list[tuple[str, str]]:
            return [(registry.key_text(app, b, keymap), registry.describe(b)) for b in bindings]

        screens = [(registry.key_text(app, e.binding(), keymap), e.name) for e in registry.SCREENS]
        everywhere = rows([c.binding() for c in registry.COMMANDS if c.key is not None])
        everywhere += rows(registry.shared_keys())
        everywhere.append(TABLE_MOVES)
        palette = Binding(app.COMMAND_PALETTE_BINDING, "command_palette")
        everywhere.append(
            (registry.key_text(app, palette, {}), "command palette: every action, the theme")
        )
        here: list[Section] = []
        others: list[Section] = []
        for entry, (key, _title) in zip(registry.SCREENS, screens, strict=True):
            keys = rows(registry.screen_keys(entry))
            if entry.mode == self.current:
                here.append((f"{entry.title}, here: {entry.about}", keys))
            else:
                others.append((f"{entry.title} ({key}): {entry.about}", keys))
        return [("Screens", screens), ("Everywhere", everywhere)], here, others

    def compose(self) -> ComposeResult:
        # The screens and the app's keys side by side, this screen's keys, the filter
        # language (Live's, the first screen's), then every other screen's keys.
        (screens, everywhere), here, others = self.key_sections()
        grid = Table.grid(expand=True, padding=(0, 4, 0, 0))
        grid.add_column(ratio=1)
        grid.add_column(ratio=3)
        grid.add_row(_table(*screens, "key"), _table(*everywhere, "key"))
        with VerticalScroll(id="help-body"):
            yield Static(Text("mpsandbox help", style="bold"), id="help-title")
            yield Static(grid)
            for title, rows in here:
                yield Static(_table(title, rows, "key"))
            yield Static(
                _table("Filter language (also the inspection API's q=)", QUERY_HELP, "term")
            )
            yield Static(_table("Examples", QUERY_EXAMPLES, "query"))
            for title, rows in others:
                yield Static(_table(title, rows, "key"))
            yield Static(
                _table(
                    "Chaos spec (ctrl+p Chaos: set…; also `mpsandbox chaos`, /sandbox/chaos): "
                    "a share of intake requests answered badly, to see how a client retries",
                    [*CHAOS_HELP, *CHAOS_EXAMPLES],
                    "term",
                )
            )
            yield Static(Text("Esc closes this help.", style="dim"))

    def action_dismiss(self) -> None:
        self.dismiss(None)


def _table(title: str, rows: list[tuple[str, str]], left: str) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        expand=True,
        show_header=False,
        box=None,
        padding=(0, 2, 0, 0),
    )
    table.add_column(left, style="bold cyan", no_wrap=True)
    table.add_column("meaning")
    for a, b in rows:
        table.add_row(Text(a), Text(b))
    return table
