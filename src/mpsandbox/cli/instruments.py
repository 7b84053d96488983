"""`mpsandbox check` and `mpsandbox instrument new`: instrument definitions on the command line.

Thin on purpose: options in, a call into `mpsandbox.instruments`, a report out, an exit
status (0 every check passed; 1 a check failed or was not seen; 2 a definition or the
source of events cannot be used).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mpsandbox.cli.options import build_settings, schema_options
from mpsandbox.errors import MpsandboxError
from mpsandbox.wording import plural


def _style(text: str, status: str) -> str:
    from mpsandbox.instruments.report import COLORS

    return click.style(text, fg=COLORS.get(status), bold=status != "pass")


@click.command()
@click.argument("instruments", nargs=-1, metavar="[INSTRUMENT]...")
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=None,
    help="Judge the events stored in this database (default: serve's database).",
)
@click.option(
    "--fixtures",
    "fixtures",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Judge the events of this file (a JSON array, one event, or JSON lines) through "
    "the local pipeline into a temporary database, and check those (repeatable).",
)
@click.option(
    "--url",
    default=None,
    metavar="URL",
    help="Ask a running sandbox's inspection API, e.g. http://127.0.0.1:8192.",
)
@click.option(
    "--since",
    default=None,
    metavar="WHEN",
    help="Only events received since WHEN (5m, 2h, 2024-10-01T12:00), with --db or --url.",
)
@click.option(
    "--instruments",
    "library",
    default=None,
    metavar="DIR",
    help="Where names are looked up (default: ./instruments, else the checkout's).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "junit"]),
    default="text",
    show_default=True,
    help="Lines for people, JSON (instruments/README.md documents it), or JUnit XML for CI.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the report to FILE (the text report still goes to the terminal).",
)
@click.option(
    "--allow-not-seen",
    is_flag=True,
    help="Checks with no events pass (JUnit: skipped) instead of failing.",
)
@schema_options
def check(
    instruments: tuple[str, ...],
    db: Path | None,
    fixtures: tuple[Path, ...],
    url: str | None,
    since: str | None,
    library: str | None,
    fmt: str,
    output: Path | None,
    allow_not_seen: bool,
    **opts: Any,
) -> None:
    """Judge captured events against instrument definitions.

    Each INSTRUMENT is a definition file, a folder of them, or a name in instruments/
    (--instruments DIR); none means every definition there. Events come from --db
    (default), --fixtures or --url. Each check passes, fails (with the reason and the
    nearest event) or is not seen. Exits 1 if any check fails or is not seen (see
    --allow-not-seen), 2 if a definition or the events cannot be read.
    """
    from mpsandbox.instruments import report, sources
    from mpsandbox.instruments.checks import check_all, exit_status
    from mpsandbox.instruments.definitions import resolve

    chosen = [x for x in (db is not None, bool(fixtures), url is not None) if x]
    if len(chosen) > 1:
        raise click.UsageError("give one source of events: --db, --fixtures or --url")
    lib = resolve(instruments, library)
    if not lib.definitions:
        problems = [str(p) for p in lib.problems]
        problems = problems or [f"no instrument definitions in {lib.location}"]
        raise MpsandboxError("\nmpsandbox: ".join(problems))
    streams = lib.streams()
    settings = build_settings(db=db, **opts)
    try:
        if fixtures:
            events = sources.events_from_fixtures(fixtures, settings)
            source = {"kind": "fixtures", "location": [str(f) for f in fixtures]}
        elif url is not None:
            events = sources.events_from_url(url, streams, since=since)
            source = {"kind": "url", "location": url}
        else:
            events = sources.events_from_store(settings.db, streams, since=since)
            source = {"kind": "db", "location": str(settings.db)}
    except sources.SourceError as exc:
        raise MpsandboxError(str(exc)) from None
        return
    source["events"] = len(events)
    if since:
        source["since"] = since
    results = check_all(lib.definitions, events)
    code = exit_status(results, allow_not_seen=allow_not_seen)
    if lib.problems:
        code = 2
    color = output is None and sys.stdout.isatty()
    text = report.render_text(results, lib.problems, style=_style if color else None)
    if fmt == "json":
        from mpsandbox import jsonio

        rendered = jsonio.pretty(
            report.as_json(results, lib.problems, source=source, allow_not_seen=allow_not_seen)
        )
        rendered += "\n"
    elif fmt == "junit":
        rendered = report.render_junit(results, lib.problems, allow_not_seen=allow_not_seen)
    else:
        rendered = text
    if output is not None:
        try:
            output.write_text(rendered, encoding="utf-8")
        except OSError as exc:
            raise MpsandboxError(f"cannot write {output}: {exc.strerror}") from None
        click.echo(text, nl=False)
    else:
        click.echo(rendered, nl=False)
    sys.exit(code)


@click.group()
def instrument() -> None:
    """Instrument definitions: scaffold one from captured events (`new`).

    Check definitions with `mpsandbox check`; the format is in instruments/README.md.
    """


@instrument.command("new")
@click.argument("name")
@click.argument("query", nargs=-1)
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=None,
    help="The database the events were captured in (default: serve's database).",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    default="instruments",
    show_default=True,
    metavar="DIR",
    help="Write DIR/NAME.yaml; - prints it instead.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing DIR/NAME.yaml.")
@click.option(
    "--limit",
    type=int,
    default=10_000,
    show_default=True,
    help="Scaffold from at most this many of the newest matching events.",
)
def instrument_new(
    name: str, query: tuple[str, ...], db: Path | None, out_dir: str, force: bool, limit: int
) -> None:
    """Scaffold definition NAME from the captured events matching QUERY.

    QUERY is the filter language of the TUI and the API (stream:NAME action:click
    since:1h ...; several words are one query). The definition (stream, schema, the
    actions with their interaction fields, funnel steps, the experiment) passes
    `mpsandbox check` against those same events; edit it into what the instrument must
    send.
    """
    from mpsandbox.instruments.checks import ObservedEvent
    from mpsandbox.instruments.scaffold import ScaffoldError, build
    from mpsandbox.instruments.sources import read_newest
    from mpsandbox.query import QuerySyntaxError, parse_query
    from mpsandbox.store import EventFilter, StoreError, StoreReader

    text = " ".join(query)
    try:
        parsed = parse_query(text)
    except QuerySyntaxError as exc:
        raise MpsandboxError(f"query: {exc}") from None
        return
    settings = build_settings(db=db)
    if not Path(settings.db).exists():
        raise MpsandboxError(f"{settings.db}: no such database (give --db)")
    target = None if out_dir == "-" else Path(out_dir) / f"{name}.yaml"
    if target is not None and target.exists() and not force:
        raise MpsandboxError(f"{target} exists; choose another NAME, or --force to overwrite it")
    try:
        with StoreReader(settings.db) as reader:
            rows = read_newest(reader, EventFilter(query=parsed), max(1, limit))
    except StoreError as exc:
        raise MpsandboxError(str(exc)) from None
        return
    events = [ObservedEvent.from_stored(r) for r in rows]
    try:
        result = build(name, events, query=text, where=str(settings.db))
    except ScaffoldError as exc:
        raise MpsandboxError(str(exc)) from None
        return
    if target is None:
        click.echo(result.text, nl=False)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(result.text, encoding="utf-8")
        counts = result.result.counts()
        click.echo(
            f"wrote {target}: {plural(len(result.definition.expects), 'expectation')} from "
            f"{plural(result.events, 'event')}; against them {plural(counts['pass'], 'check')} "
            f"pass, {counts['fail']} fail"
        )
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
