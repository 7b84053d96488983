"""The one list of screens and app-wide commands; modes, keys, palette and help come from it.

Adding a screen is one :class:`ScreenEntry` here: the app's ``MODES``, its number key (a
:class:`~textual.binding.Binding` with the id ``screen.<mode>``, so a keymap can move it), the
command palette's entry and the help's lines are all generated. :data:`COMMANDS` does the same
for the app's own intents (help, another port, reset, chaos, re-validation, quit).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from mpsandbox.tui.screens.errors import ErrorsScreen
from mpsandbox.tui.screens.experiments import ExperimentsScreen
from mpsandbox.tui.screens.flips import FlipsScreen
from mpsandbox.tui.screens.instruments import InstrumentsScreen
from mpsandbox.tui.screens.keys import SCREEN_ID_PREFIX, KeyedScreen
from mpsandbox.tui.screens.live import LiveScreen
from mpsandbox.tui.screens.metrics import MetricsScreen
from mpsandbox.tui.screens.replay import ReplayScreen
from mpsandbox.tui.screens.schemas import SchemasScreen
from mpsandbox.tui.screens.sessions import SessionsScreen
from mpsandbox.tui.screens.streams import StreamsScreen
from mpsandbox.tui.widgets.event_detail import EventDetail
from mpsandbox.tui.widgets.event_table import EventTable

if TYPE_CHECKING:
    from textual.app import App


@dataclass(frozen=True, slots=True)
class ScreenEntry:
    key: str
    mode: str
    #: The key bar's word for it.
    name: str
    #: The palette's title.
    title: str
    #: One line: what the screen shows (palette and help).
    about: str
    screen: type[KeyedScreen]
    #: Widgets inside the screen whose keys the help lists with the screen's own.
    widgets: tuple[type, ...] = ()

    @property
    def binding_id(self) -> str:
        return f"{SCREEN_ID_PREFIX}{self.mode}"

    def binding(self) -> Binding:
        return Binding(
            self.key, f"switch_mode('{self.mode}')", self.name, tooltip=self.about,
            id=self.binding_id,
        )  # fmt: skip


SCREENS: tuple[ScreenEntry, ...] = (
    ScreenEntry(
        "1", "live", "Live", "Live events", "Events as they arrive, filterable", LiveScreen,
        (EventTable, EventDetail),
    ),
    ScreenEntry(
        "2", "errors", "Errors", "Errors", "Validation errors grouped by field and rule",
        ErrorsScreen, (EventTable,),
    ),
    ScreenEntry(
        "3", "schemas", "Schemas", "Schemas", "Schema sources, load errors, resolve probe",
        SchemasScreen,
    ),
    ScreenEntry(
        "4", "streams", "Streams", "Streams",
        "Stream configs, received counts, sampling and the what-if", StreamsScreen,
    ),
    ScreenEntry(
        "5", "sessions", "Sessions", "Sessions",
        "Sessions and a session's timeline with funnels", SessionsScreen,
    ),
    ScreenEntry(
        "6", "experiments", "Experiments", "Experiments and flags",
        "Experiments, enrollment, overrides and the mpo string", ExperimentsScreen,
    ),
    ScreenEntry(
        "7", "flips", "Flips", "Flips",
        "Verdicts that flipped when a schema change had stored events judged again",
        FlipsScreen,
    ),
    # When the key bar is too narrow for every screen key, it folds them into one entry
    # (1…0 screens) that opens the help.
    ScreenEntry(
        "8", "instruments", "Instruments", "Instruments",
        "Coverage of the instrument definitions by the captured events, live",
        InstrumentsScreen,
    ),
    ScreenEntry(
        "9", "replay", "Replay", "Replay a fixture",
        "Send a fixture file's requests into this sandbox or to an intake URL", ReplayScreen,
    ),
    ScreenEntry(
        "0", "metrics", "Metrics", "Metrics",
        "Metric previews: rates with 95% intervals, per group, updating live", MetricsScreen,
    ),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Command:
    """An app-wide intent: an app action, maybe a key, maybe a palette entry."""

    action: str
    #: The palette's title (None: not in the palette, e.g. quit, which Textual lists).
    title: str | None
    about: str
    key: str | None = None
    #: The key bar's word for it, and whether the key bar shows it.
    name: str = ""
    show: bool = False

    @property
    def binding_id(self) -> str:
        return f"app.{self.action}"

    def binding(self) -> Binding:
        assert self.key is not None
        return Binding(
            self.key, self.action, self.name or self.about, show=self.show, tooltip=self.about,
            id=self.binding_id,
        )  # fmt: skip


COMMANDS: tuple[Command, ...] = (
    Command("help", "Help", "Keys, the filter language and the chaos spec", "question_mark,f1",
            "Help", show=True),
    Command("listen_elsewhere", "Listen on another port",
            "Start the intake on a port you choose", "ctrl+l", "Port"),
    Command("reset_store", "Reset the store", "Delete every stored request and event",
            "ctrl+x", "Reset"),
    Command("revalidate", "Re-validate stored events",
            "Judge the newest stored events again with the schemas as they are now "
            "(r on Flips)"),
    Command("set_chaos", "Chaos: set…",
            "Answer a share of intake requests 500/503/207, drop or delay them, to see how "
            "a client retries"),
    Command("chaos_off", "Chaos: off", "Answer every intake request normally again"),
    Command("quit", None, "Quit (every acknowledged event is written first)", "q", "Quit",
            show=True),
)  # fmt: skip


def modes() -> dict[str, type[Screen]]:
    return {entry.mode: entry.screen for entry in SCREENS}


def bindings() -> list[Binding]:
    """The app's bindings: a number key per screen, then the commands that have a key."""
    out = [entry.binding() for entry in SCREENS]
    out += [command.binding() for command in COMMANDS if command.key is not None]
    return out


def keys_of(binding: Binding, keymap: Mapping[str, str]) -> list[str]:
    """The keys a binding answers to, after the user's keymap."""
    keys = keymap.get(binding.id or "", binding.key)
    return [key.strip() for key in keys.split(",") if key.strip()]


def key_text(app: App, binding: Binding, keymap: Mapping[str, str]) -> str:
    """How the help and the palette write a binding's keys (``? f1``, ``ctrl+l``)."""
    return " ".join(
        app.get_key_display(Binding(key, binding.action)) for key in keys_of(binding, keymap)
    )


def system_commands(app: App, keymap: Mapping[str, str]) -> Iterator[SystemCommand]:
    """The palette's entries for every screen and command, each with its current key."""
    for entry in SCREENS:
        key = key_text(app, entry.binding(), keymap)
        switch = partial(app.switch_mode, entry.mode)
        yield SystemCommand(entry.title, f"{entry.about} ({key})", switch)
    for command in COMMANDS:
        if command.title is None:
            continue
        about = command.about
        if command.key is not None:
            about += f" ({key_text(app, command.binding(), keymap)})"
        yield SystemCommand(command.title, about, partial(app.run_action, command.action))


def own_bindings(cls: type) -> list[Binding]:
    """The bindings a class declares itself (not those it inherits)."""
    return [b for b in cls.__dict__.get("BINDINGS", []) if isinstance(b, Binding)]


def screen_keys(entry: ScreenEntry) -> list[Binding]:
    """The keys of one screen as the help lists them: the screen's own, then its widgets'.
    Only bindings with an id: ours, which a keymap can move (the plain moves in a table,
    arrows and pages, are Textual's and listed once)."""
    out: list[Binding] = []
    for cls in (entry.screen, *entry.widgets):
        out += [b for b in own_bindings(cls) if b.id]
    return out


def shared_keys() -> list[Binding]:
    """The keys every screen has (Esc, g, G)."""
    return own_bindings(KeyedScreen)


def describe(binding: Binding) -> str:
    return binding.tooltip or binding.description


def all_screen_bindings() -> Iterable[tuple[ScreenEntry, Binding]]:
    for entry in SCREENS:
        for binding in screen_keys(entry):
            yield entry, binding


def binding_ids() -> set[str]:
    """Every id a keymap may name."""
    ids = {b.binding_id for b in (*SCREENS, *COMMANDS) if not isinstance(b, Command) or b.key}
    ids |= {b.id for b in shared_keys() if b.id}
    ids |= {b.id for _entry, b in all_screen_bindings() if b.id}
    return ids
