"""One event, explained: verdict, each error beside its field, fill-ins, the raw request.

A widget rather than a screen so the Live screen can show it in place: swapping two widgets'
``display`` costs one layout pass, where pushing and popping a screen costs a style pass and
several layouts (measured in ``bench/tui.py``: that made Enter and Escape the slowest keys).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from mpsandbox import jsonio
from mpsandbox.errors import MpsandboxError
from mpsandbox.explain import detail
from mpsandbox.records import LEGACY, VALID, split_path
from mpsandbox.resend import beacon_curl_command, curl_command
from mpsandbox.tui.json_view import render_json
from mpsandbox.tui.paths import shown_path
from mpsandbox.tui.safe_text import clean, safe
from mpsandbox.tui.timefmt import full_time_ms
from mpsandbox.tui.widgets.event_table import BADGES
from mpsandbox.wording import plural

#: A hidden detail waits this long for its event before it shows itself saying it is reading.
SLOW_READ = 0.15

#: Request bodies longer than this are cut on screen.
BODY_LIMIT = 8_000


def chaos_summary(chaos: dict[str, Any]) -> str:
    """What chaos did to a request, from its ``requests.chaos`` record."""
    parts = []
    injected = chaos.get("injected")
    failed = chaos.get("failed") or []
    if injected == "drop":
        parts.append("connection dropped without an answer; no event stored")
    elif injected == 207 and failed:
        which = ", ".join(str(i) for i in failed)
        parts.append(f"items {which} of the request failed by injection and were not stored")
    elif injected is not None:
        parts.append(f"answered {injected} by injection; no event stored")
    if chaos.get("latency_ms"):
        parts.append(f"answer delayed {chaos['latency_ms']:g} ms")
    spec = chaos.get("spec")
    return "; ".join(parts) + (f"  (chaos {spec})" if spec else "")


def _dotted(field: tuple) -> str:
    out = ""
    for key in field:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "(the event)"


def working_copy_text(data: dict[str, Any], result: dict[str, Any]) -> Text:
    """What the working copy says of the event, beside what the published version said."""
    t = Text("Judged by the working copy", style="bold underline")
    if result.get("working_copy") is None:
        t.append("\n No current.yaml for ", style="dim")
        t.append_text(safe(data.get("schema_title") or "(no title)", "bold"))
        t.append(" in the --schemas directories: the published version judged it.", style="dim")
        return t
    t.append("\n ")
    t.append_text(safe(result["working_copy"], "bold"))
    if result.get("working_copy_version"):
        t.append_text(safe(f"  ($id version {result['working_copy_version']})", "dim"))
    label, style = BADGES.get(result["verdict"], (result["verdict"], ""))
    stored, stored_style = BADGES.get(data["verdict"], (data["verdict"], ""))
    t.append("\n ")
    t.append(f" {label} ", style=style)
    t.append("  by the working copy; ")
    t.append(f" {stored} ", style=stored_style)
    t.append(" as stored" + (" (no change)" if result["verdict"] == data["verdict"] else ""))
    for e in result.get("errors") or []:
        field = (e.get("dataPath") or "").lstrip(".") or "(the event)"
        t.append("\n   ◀ ", style="bold red")
        t.append_text(safe(f"{field}: {e.get('message')}", "red", 300))
    if result.get("reason"):
        t.append("\n   ")
        t.append_text(safe(result["reason"], "yellow", 1000, wrap=True))
    return t


class EventDetail(VerticalScroll):
    """Everything stored about one event. ``show(id)`` loads another; the data is read on a
    reader thread, never on the UI loop."""

    BINDINGS = [
        Binding(
            "c",
            "copy_json",
            "Copy JSON",
            id="event.copy_json",
            tooltip="in an event: copy it as JSON",
        ),
        Binding(
            "u",
            "copy_curl",
            "Copy curl",
            id="event.copy_curl",
            tooltip="in an event: copy it as a curl command",
        ),
        Binding(
            "a",
            "copy_received",
            "Copy as received",
            show=False,
            id="event.copy_received",
            tooltip="in an event: copy the request body as received",
        ),
        Binding(
            "w",
            "working_copy",
            "Judge by current.yaml",
            id="event.working_copy",
            tooltip="in an event: judge it by its schema's working copy "
            "(unmaterialized current.yaml)",
        ),
    ]

    class OpenSibling(Message):
        """The user chose another event of the same request; the owner decides how to open it
        (the Live screen keeps a trail for Escape, a detail screen pushes another)."""

        def __init__(self, event_id: int) -> None:
            super().__init__()
            self.event_id = event_id

    def __init__(self, event_id: int | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.event_id = event_id
        self.data: dict[str, Any] | None = None
        self._reveal: Callable[[], None] | None = None
        self._slow: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-summary")
        yield Static("", id="detail-errors", classes="section")
        yield Static("", id="detail-flips", classes="section")
        yield Static("", id="detail-working", classes="section")
        yield Static("", id="detail-findings", classes="section")
        yield Static("", id="detail-event", classes="section")
        yield Static("", id="detail-fills", classes="section")
        yield Static("", id="detail-request", classes="section")
        yield Static(
            "Other events in the same request", classes="section-title", id="siblings-title"
        )
        yield OptionList(id="detail-siblings")

    def on_mount(self) -> None:
        if self.event_id is not None:
            self._begin()

    def show(self, event_id: int, *, reveal: Callable[[], None] | None = None) -> None:
        """Show another event. Shown: what was there is cleared at once, so a slow read can
        never leave one event's details under another's number. Hidden: ``reveal`` is called
        in the same update as the event is drawn, so the screen is laid out once, with the
        event in it (or after SLOW_READ, with a note that it is being read)."""
        self.event_id = event_id
        self.data = None
        self._reveal = reveal
        if self.is_mounted:
            self._begin()

    def _begin(self) -> None:
        if self._slow is not None:
            self._slow.stop()
            self._slow = None
        if self.display:
            self._reading()
        elif self._reveal is not None:
            self._slow = self.set_timer(SLOW_READ, self._show_reading)
        self.load()

    def _reading(self) -> None:
        self._clear()
        self.query_one("#detail-summary", Static).update(f"Reading event #{self.event_id}…")

    def _show_reading(self) -> None:
        self._slow = None
        self._reading()
        self._revealed()

    def _revealed(self) -> None:
        reveal, self._reveal = self._reveal, None
        if reveal is not None:
            reveal()

    @work(exclusive=True, group="detail")
    async def load(self) -> None:
        event_id = self.event_id
        reader = self.app.reader
        data = None if reader is None else await self.app.read(reader.get_event, event_id)
        if event_id != self.event_id:
            return
        if self._slow is not None:
            self._slow.stop()
            self._slow = None
        self._revealed()
        if data is None:
            self._clear()
            self.query_one("#detail-summary", Static).update(
                Text(
                    f"Event #{event_id} is not in the store (deleted by a reset or retention?).",
                    style="bold red",
                )
            )
            return
        self.data = data
        self._show(data)
        self.scroll_home(animate=False)

    def commands(self):
        """Palette entries for this event's actions, for whichever screen shows it."""
        from textual.app import SystemCommand

        yield SystemCommand(
            "Copy event as JSON", "The event as validated (c)", self.action_copy_json
        )
        yield SystemCommand(
            "Copy event as curl", "A command that resends it (u)", self.action_copy_curl
        )
        yield SystemCommand(
            "Copy event as received", "Before any fill-ins (a)", self.action_copy_received
        )
        yield SystemCommand(
            "Judge by the working copy",
            "Validate against the schema's unmaterialized current.yaml (w)",
            self.action_working_copy,
        )

    def action_working_copy(self) -> None:
        if self.data is not None:
            self.query_one("#detail-working", Static).update(
                Text("Judging by the working copy (current.yaml)…", style="italic")
            )
            self._judge_working_copy(self.data)

    @work(exclusive=True, group="detail-working")
    async def _judge_working_copy(self, data: dict[str, Any]) -> None:
        try:
            result = await self.app.read_slow(self.app.judge_by_working_copy, data)
        except MpsandboxError as exc:  # the intake could not answer
            if self.data is data:
                self.query_one("#detail-working", Static).update(
                    safe(f"Not judged by the working copy: {exc}", "bold red", 500)
                )
            return
        if self.data is not data:
            return
        self.query_one("#detail-working", Static).update(working_copy_text(data, result))
        self.query_one("#detail-working").scroll_visible(animate=False)

    def _clear(self) -> None:
        for section in self.query(".section").results(Static):
            section.update("")
        self.query_one("#siblings-title").display = False
        self.query_one("#detail-siblings").display = False

    # -- rendering ------------------------------------------------------------------------
    def _show(self, d: dict[str, Any]) -> None:
        self.query_one("#detail-summary", Static).update(self._summary(d))
        self.query_one("#detail-errors", Static).update(self._errors(d))
        self.query_one("#detail-working", Static).update("")
        flips = self.query_one("#detail-flips", Static)
        flips.display = bool(d.get("flips"))
        flips.update(self._flips(d))
        self.query_one("#detail-findings", Static).update(self._findings(d))
        self.query_one("#detail-event", Static).update(self._event(d))
        self.query_one("#detail-fills", Static).update(self._fills(d))
        self.query_one("#detail-request", Static).update(self._request(d))
        siblings = [s for s in d.get("siblings", []) if s["id"] != d["id"]]
        options = self.query_one("#detail-siblings", OptionList)
        options.clear_options()
        for s in siblings:
            label = Text.assemble(
                (f"#{s['id']} ", "bold"),
                (f"(item {s['idx']}) ", "dim"),
                (
                    BADGES.get(s["verdict"], (s["verdict"], ""))[0],
                    BADGES.get(s["verdict"], ("", ""))[1],
                ),
            )
            options.add_option(Option(label, id=str(s["id"])))
        self.query_one("#siblings-title").display = bool(siblings)
        options.display = bool(siblings)

    def _summary(self, d: dict[str, Any]) -> Text:
        label, style = BADGES.get(d["verdict"], (d["verdict"], "reverse"))
        t = Text()
        t.append(f" {label} ", style=style)
        t.append(f"  event #{d['id']}", style="bold")
        t.append("   stream ", style="dim")
        t.append_text(safe(d.get("stream") or "(none)", "bold"))
        t.append("\n received ", style="dim")
        t.append(full_time_ms(d.get("received_at")))
        t.append("   request ", style="dim")
        t.append(f"#{d['request_id']} item {d['idx']}")
        t.append("\n schema   ", style="dim")
        t.append_text(safe(d.get("schema_uri") or "(no $schema)", "bold"))
        exp = d.get("explanation") or {}
        if exp.get("schema_location"):
            t.append("\n from     ", style="dim")
            t.append_text(safe(shown_path(exp["schema_location"])))
            if exp.get("schema_source"):
                t.append_text(safe(f"  ({shown_path(exp['schema_source'])})", "dim"))
        if d.get("message"):
            t.append("\n\n ")
            t.append_text(safe(d["message"], "bold yellow"))
        if exp.get("reason"):
            t.append("\n ")
            t.append_text(safe(exp["reason"]))
        for attempt in exp.get("tried", [])[:20]:
            t.append("\n   tried ", style="dim")
            t.append_text(safe(" ".join(shown_path(v) for v in attempt.values())))
        for title, versions in (exp.get("available_versions") or {}).items():
            t.append("\n   available ", style="dim")
            t.append_text(safe(f"{shown_path(title)}: {', '.join(versions)}"))
        for hint in exp.get("hints", []):
            t.append("\n   hint ", style="bold cyan")
            t.append_text(safe(hint))
        return t

    def _errors(self, d: dict[str, Any]) -> Table | Text:
        errors = d.get("errors") or []
        if not errors:
            if d["verdict"] == VALID:
                return Text("✔ valid against " + clean(d.get("schema_uri")), style="green")
            if d["verdict"] == LEGACY:
                return Text(
                    "◇ legacy EventLogging beacon: not validated (see the explanation)",
                    style="cyan",
                )
            return Text("")
        table = Table(
            title=safe(
                f"{plural(len(errors), 'validation error')} against "
                f"{d.get('schema_uri')} (title {d.get('schema_title')}, "
                f"version {d.get('schema_version')})",
                "italic",
                wrap=True,
            ),
            title_justify="left",
            expand=True,
            show_lines=False,
        )
        table.add_column("field", style="bold", overflow="fold")
        table.add_column("problem", overflow="fold")
        table.add_column("expected", overflow="fold")
        table.add_column("actual", overflow="fold")
        table.add_column("rule", style="dim", overflow="fold")
        for e in errors:
            x = detail(d["accepted"], e)
            table.add_row(
                safe(_dotted(x.field), wrap=True),
                safe(x.message, "red", wrap=True),
                safe(x.expected, wrap=True),
                safe(x.actual, wrap=True),
                safe(x.rule, wrap=True),
            )
        return table

    def _flips(self, d: dict[str, Any]) -> Table | Text:
        """The verdict as judged again after schema changes, newest first; the badge at
        the top stays what the intake answered when the event arrived."""
        flips = d.get("flips") or []
        if not flips:
            return Text("")
        now = flips[0]["after_verdict"]
        label, style = BADGES.get(now, (now, ""))
        title = Text.assemble(
            ("Judged again after schema changes: now ", "italic"),
            (f" {label} ", style),
            (
                f" ({plural(len(flips), 'flip')}; the stored verdict is unchanged)",
                "italic",
            ),
        )
        table = Table(title=title, title_justify="left", expand=True)
        table.add_column("when", no_wrap=True)
        table.add_column("run", style="dim")
        table.add_column("verdict", no_wrap=True)
        table.add_column("errors after", overflow="fold", ratio=3)
        for f in flips:
            before, after = (
                BADGES.get(f["before_verdict"], (f["before_verdict"], "")),
                BADGES.get(f["after_verdict"], (f["after_verdict"], "")),
            )
            errors = f.get("after_errors") or []
            lines = [
                f"{(e.get('dataPath') or '').lstrip('.') or '(the event)'}: {e.get('message')}"
                for e in errors[:5]
            ] or [f.get("after_message") or "no errors"]
            table.add_row(
                full_time_ms(f.get("at")),
                f"#{f['run_id']} {f.get('trigger') or ''}",
                Text.assemble((before[0], before[1]), " → ", (after[0], after[1])),
                Text("\n").join(safe(line, "", 300) for line in lines),
            )
        return table

    def _findings(self, d: dict[str, Any]) -> Table | Text:
        findings = d.get("findings") or []
        if not findings:
            return Text("No platform findings.", style="dim")
        table = Table(
            title=Text(f"Platform findings ({len(findings)})", style="italic"),
            title_justify="left",
            expand=True,
        )
        table.add_column("kind", style="bold", overflow="fold")
        table.add_column("severity")
        table.add_column("what", overflow="fold", ratio=2)
        table.add_column("facts", style="dim", overflow="fold", ratio=2)
        order = {"error": 0, "warning": 1, "info": 2}
        for f in sorted(findings, key=lambda f: order.get(f.get("severity"), 3)):
            severity = str(f.get("severity"))
            style = {"error": "bold red", "warning": "yellow"}.get(severity, "dim")
            facts = ", ".join(
                f"{k}={jsonio.dumps_str(v)}" for k, v in (f.get("facts") or {}).items()
            )
            table.add_row(
                safe(f.get("kind"), wrap=True),
                safe(severity, style),
                safe(f.get("message"), wrap=True),
                safe(facts, "", 600, wrap=True),
            )
        return table

    def _event(self, d: dict[str, Any]) -> Text:
        notes: dict[tuple, list[Text]] = {}
        for e in d.get("errors") or []:
            x = detail(d["accepted"], e)
            note = Text("◀ ", style="bold red")
            note.append_text(safe(f"{x.message} (expected {x.expected}, got {x.actual})", "red"))
            notes.setdefault(x.field, []).append(note)
        for path, fill in (d.get("fills") or {}).items():
            field = tuple(split_path(path))
            who = "schema default" if fill.get("by") == "default" else "filled by the intake"
            notes.setdefault(field, []).append(Text(f"◀ {who}", style="italic cyan"))
        title = Text("The event as validated", style="bold underline")
        if d.get("fills"):
            title.append("  (as received, plus the fill-ins marked)", style="dim")
        return Text.assemble(title, "\n", render_json(d["accepted"], notes))

    def _fills(self, d: dict[str, Any]) -> Table | Text:
        fills = d.get("fills") or {}
        if not fills:
            return Text("No fill-ins: the event was validated exactly as received.", style="dim")
        table = Table(title="Fill-ins applied", title_justify="left", expand=True)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        table.add_column("by")
        for path, fill in fills.items():
            table.add_row(
                safe(path), safe(jsonio.dumps_str(fill.get("value")), "", 200), safe(fill.get("by"))
            )
        return table

    def _request(self, d: dict[str, Any]) -> Text:
        req = d.get("request")
        t = Text("The request", style="bold underline")
        if req is None:
            return t.append("\n(not stored)", style="dim")
        t.append("\n")
        target = req["path"] + (f"?{req['query']}" if req.get("query") else "")
        t.append_text(safe(f"{req['method']} {target}", "bold"))
        t.append("  →  ")
        t.append_text(
            safe(
                f"{req.get('status')} {req.get('reason') or ''}",
                "bold green" if (req.get("status") or 500) < 300 else "bold red",
            )
        )
        if req.get("remote"):
            t.append_text(safe(f"   from {req['remote']}", "dim"))
        chaos = req.get("chaos")
        if chaos:
            t.append("\n")
            t.append(" ⚡ CHAOS ", style="bold white on red")
            t.append_text(safe(f" {chaos_summary(chaos)}", "bold red", 500))
        for name, value in req.get("headers") or []:
            t.append("\n  ")
            t.append_text(safe(name, "cyan"))
            t.append(": ")
            t.append_text(safe(value, "", 300))
        t.append(f"\n\n body ({req.get('body_size') or 0:,} bytes", style="dim")
        t.append(", base64)" if req.get("body_base64") else ")", style="dim")
        body = req.get("body") or ""
        for line in body[:BODY_LIMIT].splitlines()[:200]:
            t.append("\n  ")
            t.append_text(safe(line, "", 2000))
        if len(body) > BODY_LIMIT:
            t.append(f"\n  … {len(body) - BODY_LIMIT:,} more characters", style="dim")
        return t

    # -- actions ---------------------------------------------------------------------------
    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.OpenSibling(int(event.option.id)))

    def _copy(self, text: str, what: str) -> None:
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied {what} ({len(text):,} characters) to the clipboard.")

    def action_copy_json(self) -> None:
        if self.data is not None:
            self._copy(jsonio.pretty(self.data["accepted"]), "the event as JSON")

    def action_copy_received(self) -> None:
        if self.data is not None:
            self._copy(jsonio.pretty(self.data["event"]), "the event as received")

    def action_copy_curl(self) -> None:
        if self.data is None:
            return
        req = self.data.get("request") or {}
        base = self.app.status.url or f"http://{self.app.settings.host}:{self.app.settings.port}"
        if self.data["verdict"] == LEGACY:
            path = req.get("path") or self.app.settings.beacon_paths[0]
            command = beacon_curl_command(self.data["event"], base + path)
        else:
            path = req.get("path") or self.app.settings.intake_paths[0]
            command = curl_command(self.data["event"], base + path)
        self._copy(command, "a curl command")
