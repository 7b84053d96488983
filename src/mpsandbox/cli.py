"""The command line. `mpsandbox` alone starts the intake; subcommands drive the same core."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from mpsandbox import __version__
from mpsandbox.cli_metrics import metrics as metrics_command
from mpsandbox.cli_metrics import metrics_dir_option
from mpsandbox.cli_schema import schema as schema_group
from mpsandbox.config import (
    DEFAULT_INTAKE_PATH,
    MAX_PORT,
    MIN_PORT,
    Settings,
    from_environment,
    parse_duration,
    parse_size,
    split_hosts,
)
from mpsandbox.schemas.sources import PUBLIC_REMOTES


def run_async(coro) -> Any:
    """Run on uvloop when available: it halves the event loop's share of each request."""
    # A short GIL switch interval lets the store's writer thread hand back the GIL promptly,
    # so committed answers are not held up by the 5 ms default while the loop is busy.
    sys.setswitchinterval(0.0005)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def schema_options(fn):
    """Options every command that judges events shares, so they all judge alike."""
    options = [
        click.option(
            "--schemas",
            "schema_dirs",
            multiple=True,
            type=click.Path(path_type=Path),
            help="A schema repository checkout or directory (repeatable; searched in order).",
        ),
        click.option(
            "--remote-schemas",
            is_flag=True,
            help="Also fetch schemas from schema.wikimedia.org (primary, then secondary); "
            "cached on disk for offline use.",
        ),
        click.option(
            "--remote-schema-base",
            "remote_bases",
            multiple=True,
            metavar="URL",
            help="Fetch schemas from this base URL too (repeatable).",
        ),
        click.option(
            "--no-builtin-schemas",
            is_flag=True,
            help="Do not search mpsandbox's own schemas/ library.",
        ),
        click.option(
            "--fill-ins/--no-fill-ins",
            default=True,
            show_default=True,
            help="Apply production EventGate's server-side fill-ins (meta.id, meta.dt, "
            "meta.request_id, http.*, legacy dt). Off behaves like generic EventGate.",
        ),
        click.option(
            "--insecure-schemas",
            is_flag=True,
            help="Accept schemas production would refuse as insecure.",
        ),
        click.option(
            "--stream-config",
            "stream_config",
            default=None,
            metavar="FILE|URL",
            help="Stream configs (YAML or JSON: a $wgEventStreams-style map or the API's "
            '{"streams": ...}), or a dev wiki\'s api.php?action=streamconfigs&format=json URL. '
            "With it, events of undeclared streams or the wrong schema title are errors, "
            "as in production. Without it, every stream is allowed.",
        ),
        click.option(
            "--stream-config-refresh",
            default=None,
            metavar="DURATION",
            help="How often a stream config URL is fetched again (default 60s; 0 never). "
            "A file is re-read when it changes.",
        ),
    ]
    # click lists options in the reverse order of decoration: apply the last first.
    for option in reversed(options):
        fn = option(fn)
    return fn


def parse_revalidate(value: str) -> int | None:
    if value.strip().lower() == "all":
        return None
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 1:
        raise click.BadParameter(
            f"{value!r} is neither a positive number of events nor 'all'",
            param_hint="--revalidate",
        )
    return n


def build_settings(**opts: Any) -> Settings:
    try:
        s = from_environment(Settings())
    except ValueError as exc:
        raise click.UsageError(f"environment (MPSANDBOX_*): {exc}") from None
    changes: dict[str, Any] = {}
    if opts.get("schema_dirs"):
        missing = [str(d) for d in opts["schema_dirs"] if not Path(d).is_dir()]
        if missing:
            raise click.BadParameter(
                f"not a directory: {', '.join(missing)}", param_hint="--schemas"
            )
        changes["schema_dirs"] = tuple(Path(d) for d in opts["schema_dirs"])
    remotes = list(opts.get("remote_bases") or ())
    if opts.get("remote_schemas"):
        remotes += list(PUBLIC_REMOTES)
    if remotes:
        changes["remote_schemas"] = tuple(dict.fromkeys(remotes))
    if opts.get("no_builtin_schemas"):
        changes["use_builtin_schemas"] = False
    if "fill_ins" in opts:
        changes["fill_ins"] = opts["fill_ins"]
    if opts.get("insecure_schemas"):
        changes["secure_schemas"] = False
    for key in ("host", "port", "max_events"):
        if opts.get(key) is not None:
            changes[key] = opts[key]
    if opts.get("allowed_hosts"):
        changes["allowed_hosts"] = tuple(
            dict.fromkeys(
                [*s.allowed_hosts, *(n for h in opts["allowed_hosts"] for n in split_hosts(h))]
            )
        )
    if opts.get("keep_secrets"):
        changes["keep_secrets"] = True
    if opts.get("db"):
        changes["db"] = Path(opts["db"])
    if opts.get("max_body"):
        try:
            changes["max_body"] = parse_size(opts["max_body"])
        except ValueError:
            raise click.BadParameter(
                f"{opts['max_body']!r} is not a size", param_hint="--max-body"
            ) from None
    if opts.get("max_age"):
        try:
            changes["max_age_s"] = parse_duration(opts["max_age"])
        except ValueError:
            raise click.BadParameter(
                f"{opts['max_age']!r} is not a duration", param_hint="--max-age"
            ) from None
    if opts.get("intake_paths"):
        paths = [p if p.startswith("/") else "/" + p for p in opts["intake_paths"]]
        changes["intake_paths"] = tuple(dict.fromkeys([DEFAULT_INTAKE_PATH, *paths]))
    if opts.get("no_watch"):
        changes["watch_schemas"] = False
    if opts.get("revalidate"):
        changes["revalidate_limit"] = parse_revalidate(opts["revalidate"])
    if opts.get("stream_config"):
        changes["stream_config"] = opts["stream_config"]
    if opts.get("metrics_dirs"):
        changes["metrics_dirs"] = tuple(Path(d) for d in opts["metrics_dirs"])
    for key in ("experiments_file", "instruments", "wiki_url", "chaos"):
        if opts.get(key):
            changes[key] = opts[key]
    if opts.get("stream_config_refresh"):
        try:
            changes["stream_config_refresh_s"] = parse_duration(opts["stream_config_refresh"])
        except ValueError:
            raise click.BadParameter(
                f"{opts['stream_config_refresh']!r} is not a duration",
                param_hint="--stream-config-refresh",
            ) from None
    return s.with_(**changes)


def check_stream_config(settings: Settings) -> None:
    """Refuse a stream config file that cannot be used, in one line, before anything starts
    (exit 2). A URL is fetched when the intake starts (a failure there exits 2 as well)."""
    from mpsandbox.platform.stream_configs import StreamConfigError, is_url, load_location

    location = settings.stream_config
    if not location or is_url(location):
        return
    try:
        load_location(location)
    except StreamConfigError as exc:
        click.echo(f"mpsandbox: stream config {exc}", err=True)
        sys.exit(2)


def check_experiments(settings: Settings) -> None:
    """Refuse an experiments file that cannot be used, in one line, before anything starts
    (exit 2), as a broken stream config file is."""
    from mpsandbox.platform.experiments import ExperimentsError, load_experiments

    if not settings.experiments_file:
        return
    try:
        load_experiments(settings.experiments_file)
    except ExperimentsError as exc:
        click.echo(f"mpsandbox: experiments {exc}", err=True)
        sys.exit(2)


def check_chaos_spec(ctx: click.Context, param: click.Parameter, value: str | None):
    """A --chaos spec that does not parse stops the command (exit 2) naming the problem."""
    if value is None:
        return None
    from mpsandbox.chaos import GRAMMAR, ChaosError, parse_spec

    try:
        parse_spec(value)
    except ChaosError as exc:
        raise click.BadParameter(f"{exc}\n  grammar: {GRAMMAR}") from None
    return value


def server_options(fn):
    options = [
        click.option("--host", default=None, help="Address to bind (default 127.0.0.1)."),
        click.option(
            "--port",
            type=click.IntRange(MIN_PORT, MAX_PORT),
            default=None,
            help="Port (default 8192, like the EventGate devserver; 0 picks a free one).",
        ),
        click.option(
            "--allowed-host",
            "allowed_hosts",
            multiple=True,
            metavar="NAME",
            help="Also answer requests addressed to NAME (repeatable; .NAME allows every "
            "name under it). localhost, *.localhost and IP addresses are always allowed; "
            "others get 403, against DNS rebinding. Env: MPSANDBOX_ALLOWED_HOSTS.",
        ),
        click.option(
            "--keep-secrets",
            is_flag=True,
            help="Store Cookie, Authorization, Proxy-Authorization and Set-Cookie request "
            "headers as received (by default each is replaced by '[redacted: N bytes]').",
        ),
        click.option(
            "--db",
            type=click.Path(path_type=Path),
            default=None,
            help="SQLite database file (default: the user data directory).",
        ),
        click.option(
            "--max-body",
            default=None,
            metavar="SIZE",
            help="Body size limit after inflation, e.g. 4mb (default 4 MiB, like production).",
        ),
        click.option(
            "--intake-path",
            "intake_paths",
            multiple=True,
            metavar="PATH",
            help="Extra intake paths, e.g. /evt-103e/v2/events (repeatable).",
        ),
        click.option("--max-events", type=int, default=None, help="Keep at most this many events."),
        click.option(
            "--max-age",
            default=None,
            metavar="DURATION",
            help="Drop events older than this (e.g. 7d).",
        ),
        click.option(
            "--no-watch", is_flag=True, help="Do not watch schema directories for changes."
        ),
        click.option(
            "--revalidate",
            "revalidate",
            default=None,
            metavar="N|all",
            help="When a schema file changes, judge again the newest N stored events of the "
            "schemas it touches, or all of them (default 10000).",
        ),
        click.option(
            "--experiments",
            "experiments_file",
            default=None,
            metavar="FILE",
            help="Test Kitchen experiments (YAML or JSON rows), served at /api/v1/experiments "
            "with local overrides applied; read again when the file changes.",
        ),
        click.option(
            "--instruments",
            default=None,
            metavar="FILE|DIR",
            help="Test Kitchen instrument rows (YAML or JSON; a folder of them), served at "
            "/api/v1/instruments.",
        ),
        click.option(
            "--wiki-url",
            default=None,
            metavar="URL",
            help="The dev wiki's URL; shown with the experiment overrides' ?mpo=... added.",
        ),
        click.option(
            "--chaos",
            default=None,
            metavar="SPEC",
            callback=check_chaos_spec,
            help="Turn chaos on at start (stored, as `mpsandbox chaos set` does; 'off' turns "
            "it off), e.g. 503:0.2,latency:200ms,drop:0.05. See `mpsandbox chaos --help`.",
        ),
    ]
    # click lists options in the reverse order of decoration: apply the last first,
    # after the schema options, so that these come first in --help.
    fn = schema_options(fn)
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mpsandbox")
@server_options
@metrics_dir_option
@click.pass_context
def main(ctx: click.Context, **opts: Any) -> None:
    """mpsandbox: a local EventGate-compatible intake and event inspector.

    Without a command, opens the terminal UI with the intake running inside it on
    http://127.0.0.1:8192/v1/events; the options are those of `serve`. When there is no
    terminal (a pipe, CI), runs `serve` instead.
    """
    if ctx.invoked_subcommand is not None:
        given = [k for k, v in opts.items() if v not in (None, (), False) and k != "fill_ins"]
        if given or opts.get("fill_ins") is False:
            raise click.UsageError(
                f"put options after the command: mpsandbox {ctx.invoked_subcommand} --..."
            )
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo("mpsandbox: no terminal, so running headless (mpsandbox serve).", err=True)
        opts.pop("metrics_dirs", None)  # the Metrics screen's; serve has none
        ctx.invoke(serve, **opts)
        return
    settings = build_settings(**opts)
    check_stream_config(settings)
    check_experiments(settings)
    sys.exit(run_tui(settings))


def run_tui(settings: Settings, *, listen: bool = True) -> int:
    """Run the terminal UI until the user quits; every acknowledged event is stored first."""
    from mpsandbox.tui.app import MpSandboxApp

    sys.setswitchinterval(0.0005)  # see run_async: the intake thread shares the GIL
    app = MpSandboxApp(settings, listen=listen)
    try:
        code = app.run()
    finally:
        app.shutdown_intake()
    return code or 0


@main.command()
@server_options
@click.option(
    "--output",
    type=click.Choice(["text", "jsonl", "none"]),
    default=None,
    help="One line per event: text on a terminal, JSON lines otherwise (default); "
    "none prints only the ready line.",
)
def serve(output: str | None = None, **opts: Any) -> None:
    """Run the intake headless, printing one line per stored event."""
    from mpsandbox.intake.server import PortBusy, serve_forever
    from mpsandbox.platform.stream_configs import StreamConfigError
    from mpsandbox.store import StoreError

    settings = build_settings(**opts)
    check_stream_config(settings)
    check_experiments(settings)
    jsonl = None if output in (None, "none") else output == "jsonl"
    try:
        code = run_async(serve_forever(settings, jsonl=jsonl, quiet=output == "none"))
    except StreamConfigError as exc:
        click.echo(f"mpsandbox: stream config {exc}", err=True)
        sys.exit(2)
    except PortBusy as exc:
        click.echo(f"mpsandbox: {exc}", err=True)
        sys.exit(2)
    except StoreError as exc:
        click.echo(f"mpsandbox: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


@main.command()
@click.argument("source", type=click.Path(allow_dash=True))
@schema_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Human text or one JSON verdict per event.",
)
@click.option(
    "--working-copy",
    is_flag=True,
    help="Judge by each schema's unmaterialized current.yaml where a --schemas checkout has "
    "one, to test an edit before `mpsandbox schema materialize`.",
)
def validate(source: str, fmt: str, working_copy: bool, **opts: Any) -> None:
    """Judge events from SOURCE (a file or - for stdin) exactly as the intake would.

    SOURCE holds one event, a JSON array of events, or JSON lines. Exits 1 if any event is
    invalid or errored, 2 if SOURCE cannot be read.
    """
    from mpsandbox.validate_file import ReadError, run_validate

    settings = build_settings(**opts)
    check_stream_config(settings)
    try:
        code = run_validate(settings, source, fmt=fmt, out=sys.stdout, working_copy=working_copy)
    except ReadError as exc:
        click.echo(f"mpsandbox: {exc}", err=True)
        sys.exit(2)
    sys.exit(code)


# --- overrides --------------------------------------------------------------------------


def override_options(fn):
    """Where the overrides live (the database the intake uses) and what validates them."""
    options = [
        click.option(
            "--db",
            type=click.Path(path_type=Path),
            default=None,
            help="SQLite database file, as for serve (default: the user data directory).",
        ),
        click.option(
            "--experiments",
            "experiments_file",
            default=None,
            metavar="FILE",
            help="Check experiment overrides against these experiments (as serve's option).",
        ),
        click.option(
            "--wiki-url",
            default=None,
            metavar="URL",
            help="The dev wiki's URL, printed with ?mpo=... added.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _open_overrides(opts: dict[str, Any]):
    from mpsandbox.overrides import Overrides
    from mpsandbox.platform.experiments import ExperimentsError, load_experiments
    from mpsandbox.store import StoreError

    settings = build_settings(**opts)
    experiments = None
    if settings.experiments_file:
        try:
            experiments = load_experiments(settings.experiments_file)
        except ExperimentsError as exc:
            click.echo(f"mpsandbox: experiments {exc}", err=True)
            sys.exit(2)
    try:
        return Overrides(settings.db, experiments=experiments, wiki_url=settings.wiki_url)
    except StoreError as exc:
        click.echo(f"mpsandbox: {exc}", err=True)
        sys.exit(2)


def _show_value(value: Any) -> str:
    from mpsandbox import jsonio

    return value if isinstance(value, str) else jsonio.dumps_str(value)


def _echo_links(overrides) -> None:
    mpo = overrides.mpo()
    if mpo:
        click.echo(f"mpo: {mpo}")
    url = overrides.wiki_url()
    if url:
        click.echo(f"wiki: {url}")


@main.group()
def override() -> None:
    """Local overrides: experiment groups, stream sample rates and flags.

    Kept in the sandbox's database, so a running intake serves them at once (stream configs
    with the rate, /api/v1/experiments with the group) and they survive restarts.
    """


@override.command("set")
@click.argument("kind", type=click.Choice(["experiment", "sample_rate", "flag"]))
@click.argument("key")
@click.argument("value")
@override_options
def override_set(kind: str, key: str, value: str, **opts: Any) -> None:
    """Set KIND KEY to VALUE: `experiment NAME GROUP`, `sample_rate STREAM 0..1`, or
    `flag NAME JSON` (text that is not JSON is a string)."""
    from mpsandbox.overrides import OverrideError, parse_cli_value

    overrides = _open_overrides(opts)
    try:
        change = overrides.set(kind, key, parse_cli_value(kind, value), "cli")
    except OverrideError as exc:
        click.echo(f"mpsandbox: {exc}", err=True)
        sys.exit(2)
    new, old = change["override"], change["previous"]
    was = f" (was {_show_value(old['value'])})" if old else ""
    click.echo(f"{kind} {key} = {_show_value(new['value'])}{was}")
    _echo_links(overrides)


@override.command("list")
@override_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    help="A table for people, or the API's JSON.",
)
def override_list(fmt: str, **opts: Any) -> None:
    """List every override with who set it and when."""
    from mpsandbox import jsonio

    overrides = _open_overrides(opts)
    if fmt == "json":
        click.echo(jsonio.pretty(overrides.summary()))
        return
    items = overrides.list()
    if not items:
        click.echo("no overrides")
        return
    rows = [("KIND", "KEY", "VALUE", "SET BY", "SET AT")]
    rows += [
        (o.kind, o.key, _show_value(o.value), o.set_by, o.as_dict()["set_at_iso"]) for o in items
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    _echo_links(overrides)


@override.command("clear")
@click.argument("kind", required=False, type=click.Choice(["experiment", "sample_rate", "flag"]))
@click.argument("key", required=False)
@click.option("--all", "everything", is_flag=True, help="Remove every override (one step).")
@override_options
def override_clear(kind: str | None, key: str | None, everything: bool, **opts: Any) -> None:
    """Remove one override (KIND KEY), every override of KIND, or all (--all).
    `mpsandbox override revert` undoes it."""
    if everything and kind:
        raise click.UsageError("give KIND [KEY] or --all, not both")
    if not everything and not kind:
        raise click.UsageError("give KIND [KEY], or --all to remove every override")
    overrides = _open_overrides(opts)
    if key is not None:
        one = overrides.delete(kind, key, "cli")
        removed = [one] if one else []
        if not removed:
            click.echo(f"mpsandbox: no {kind} override {key!r}", err=True)
            sys.exit(1)
    else:
        removed = overrides.clear(kind, "cli")
    for o in removed:
        click.echo(f"removed {o['kind']} {o['key']} = {_show_value(o['value'])}")
    if not removed:
        click.echo("nothing to remove")
    _echo_links(overrides)


@override.command("revert")
@override_options
def override_revert(**opts: Any) -> None:
    """Undo the newest override change not yet undone (repeat to step further back)."""
    overrides = _open_overrides(opts)
    result = overrides.revert_last("cli")
    if result is None:
        click.echo("nothing to revert")
        return
    undone = result["undone"]
    click.echo(f"reverted the {undone['action']} by {undone['by']} at {undone['at']}")
    for c in result["changes"]:
        what = f"= {_show_value(c['value'])}" if c["restored"] else "removed"
        click.echo(f"  {c['kind']} {c['key']} {what}")
    _echo_links(overrides)


# --- chaos ------------------------------------------------------------------------------


def db_option(fn):
    """``--db``, for the commands that work on serve's database without running it."""
    return click.option(
        "--db",
        type=click.Path(path_type=Path),
        default=None,
        help="SQLite database file, as for serve (default: the user data directory).",
    )(fn)


def _open_chaos(opts: dict[str, Any]):
    from mpsandbox.chaos import ChaosStore
    from mpsandbox.store import StoreError

    settings = build_settings(**opts)
    try:
        return ChaosStore(settings.db), settings.db
    except StoreError as exc:
        click.echo(f"mpsandbox: {exc}", err=True)
        sys.exit(2)


def _db_flag(db: Path) -> str:
    """` --db PATH` for commands a user copies, unless PATH is the default."""
    from mpsandbox.config import default_db_path

    return "" if Path(db) == default_db_path() else f" --db {db}"


def _was(previous: dict[str, Any]) -> str:
    return f" (was {previous['spec']})" if previous.get("on") else " (was off)"


@main.group()
def chaos() -> None:
    """Chaos: answer a share of intake requests badly, to see how a client retries.

    \b
    SPEC is KEY:VALUE terms, comma separated:
      500:SHARE        answer 500, every event failed (none stored)
      503:SHARE        answer 503 with Retry-After (none stored)
      207:SHARE        fail some events of the request (failed:SHARE of them,
                       default 0.5); the rest are stored and acknowledged
      drop:SHARE       close the connection without an answer (none stored)
      latency:DUR      delay every answer (200ms, 1.5s, or a range 50-400ms)
      retry-after:N    503's Retry-After seconds (default 1)
      seed:N           repeatable choices
    SHARE is 0.2 or 20%; 500, 503, 207 and drop add up to 1 or less.
    e.g. 503:0.2,latency:200ms,drop:0.05   207:0.5,latency:50-400ms,seed:7

    Stored in the database, so a running intake (serve or the TUI) applies a change within
    a second, and it stays on across restarts until turned off. Each request records the
    chaos applied to it. Only POSTs on intake paths are affected.
    """


@chaos.command("set")
@click.argument("spec")
@db_option
def chaos_set(spec: str, **opts: Any) -> None:
    """Turn chaos on with SPEC (replacing any setting); 'off' turns it off."""
    from mpsandbox.chaos import GRAMMAR, ChaosError, parse_spec

    try:
        settings = parse_spec(spec)
    except ChaosError as exc:
        click.echo(f"mpsandbox: chaos spec {exc}\n  grammar: {GRAMMAR}", err=True)
        sys.exit(2)
    store, db = _open_chaos(opts)
    change = store.set(settings, "cli")
    state = store.state()
    store.close()
    if not state.on:
        click.echo("chaos is off" + _was(change["previous"]))
        return
    click.echo(f"chaos is ON: {state.spec}{_was(change['previous'])}")
    click.echo(f"  {state.settings.describe()}")
    click.echo(
        "  a running intake on this database applies it within a second; turn it off with "
        f"`mpsandbox chaos off{_db_flag(db)}`"
    )


@chaos.command("off")
@db_option
def chaos_off(**opts: Any) -> None:
    """Turn chaos off: the intake answers normally again."""
    store, _ = _open_chaos(opts)
    change = store.off("cli")
    click.echo("chaos is off" + _was(change["previous"]))
    store.close()


@chaos.command("show")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="A line for people, or the setting as JSON (as GET /sandbox/chaos has it).",
)
def chaos_show(fmt: str, **opts: Any) -> None:
    """Show the chaos setting, who set it and when."""
    from mpsandbox import jsonio
    from mpsandbox.chaos import iso

    store, _ = _open_chaos(opts)
    state = store.state()
    store.close()
    if fmt == "json":
        click.echo(jsonio.pretty(state.as_dict()))
        return
    if not state.on:
        by = f" (turned off by {state.set_by} at {iso(state.set_at)})" if state.set_by else ""
        click.echo(f"chaos is off{by}")
        return
    click.echo(f"chaos is ON: {state.spec}")
    click.echo(f"  {state.settings.describe()}")
    click.echo(f"  set by {state.set_by} at {iso(state.set_at)}")


main.add_command(schema_group)
import mpsandbox.cli_fixtures  # noqa: E402, F401  (registers export, import, replay, bundle, open)

main.add_command(metrics_command)

# Imported last: they reuse schema_options and build_settings from above.
from mpsandbox.cli_instruments import check, instrument  # noqa: E402

main.add_command(check)
main.add_command(instrument)

if __name__ == "__main__":
    main()

from mpsandbox import cli_simulate  # noqa: E402, F401  (registers simulate, demo)
