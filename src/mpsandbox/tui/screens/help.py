"""Keys, screens, the filter language and the chaos spec, from the same lists the code
uses."""

from __future__ import annotations

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

KEYS: list[tuple[str, str]] = [
    ("1 / 2 / 3", "Live events / Errors / Schemas"),
    ("4 / 5 / 6 / 7 / 8", "Streams / Sessions / Experiments and flags / Flips / Instruments"),
    ("9", "Replay: send a fixture file into this sandbox or to an intake URL"),
    ("0", "Metrics: metric previews from metrics/*.yaml, live"),
    ("/", "focus the filter bar (Live) or the resolve probe (Schemas)"),
    ("w, o / x", "Streams: the sampling what-if; override the rate with it / clear it"),
    ("[ ]", "Sessions: previous / next page of sessions"),
    ("g, f, d", "Experiments: force the next group, set a flag, delete an override"),
    ("z / X / m", "Experiments: undo the last change / clear all / copy the mpo string"),
    ("↑ ↓ PgUp PgDn Home End, j k g G", "move in a table; moving stops following"),
    ("f", "follow the newest events again"),
    (
        "Enter, click the selected row",
        "open an event, an error group's events, a check's nearest event",
    ),
    ("Esc", "back from an event (and along events opened from it); filter bar to table"),
    ("c / u / r", "in an event: copy it as JSON / as a curl command / as received"),
    ("w", "in an event: judge it by its schema's working copy (unmaterialized current.yaml)"),
    ("r", "Flips: judge the newest stored events again now (also on schema file changes)"),
    ("ctrl+s / Esc", "Replay: start / cancel; / types the file's path"),
    ("b", "Metrics: group by as defined / none / experiment.assigned / stream"),
    ("ctrl+p", "command palette: every action, the theme switcher"),
    ("ctrl+l", "listen on another port"),
    ("ctrl+x", "reset the store (asks first)"),
    ("ctrl+p Chaos: set… / off", "answer a share of requests badly (header: CHAOS badge)"),
    ("?  F1", "this help"),
    ("q  ctrl+q", "quit (every acknowledged event is written first)"),
]


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


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q,f1", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(Text("mpsandbox help", style="bold"), id="help-title")
            yield Static(_table("Keys", KEYS, "key"))
            yield Static(
                _table("Filter language (also the inspection API's q=)", QUERY_HELP, "term")
            )
            yield Static(_table("Examples", QUERY_EXAMPLES, "query"))
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
