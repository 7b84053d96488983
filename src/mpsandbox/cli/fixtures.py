"""`mpsandbox export / import / replay / bundle / open`: fixtures on the command line.

Thin on purpose: options in, a call into ``mpsandbox.fixtures``, lines out, an exit status.
Exit statuses: 0 done; 1 a replay had transport failures (a target that never
answered); 2 unusable input (a file that is no fixture, a bad query, a corrupt bundle).
Skipped corrupt lines are reported on stderr and do not change the status (``--strict``
refuses the whole file instead).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import click

from mpsandbox.cli.options import (
    build_settings,
    check_experiments,
    check_stream_config,
    db_option,
)
from mpsandbox.cli.options import schema_options as _schema_options
from mpsandbox.errors import MpsandboxError
from mpsandbox.wording import plural

#: Skipped-line messages printed per file before "... and N more".
PROBLEMS_SHOWN = 10


def local_options(fn):
    """What the local pipeline judges with: the store, schemas, stream configs, experiments."""
    fn = _schema_options(fn)
    fn = click.option(
        "--experiments",
        "experiments_file",
        default=None,
        metavar="FILE",
        help="Test Kitchen experiments, as serve's option (for the experiment findings).",
    )(fn)
    return db_option(fn)


def strict_option(fn):
    return click.option(
        "--strict",
        is_flag=True,
        help="Refuse a file with any corrupt line or unusable entry, instead of skipping "
        "and reporting them.",
    )(fn)


def _existing_db(opts: dict[str, Any]) -> Path:
    db = build_settings(**opts).db
    if not Path(db).is_file():
        raise MpsandboxError(
            f"there is no store at {db} (nothing received yet? choose one with --db)"
        )
    return Path(db)


def _query(words: tuple[str, ...]) -> str | None:
    return " ".join(words).strip() or None


def _read(files: tuple[Path, ...], strict: bool):
    """Every request of every file, in order; problems on stderr, FixtureError exits 2."""
    from mpsandbox.fixtures import FixtureError, read_fixture

    requests = []
    for path in files:
        try:
            fixture = read_fixture(path, strict=strict)
        except FixtureError as exc:
            raise MpsandboxError(str(exc)) from None
        for problem in fixture.problems[:PROBLEMS_SHOWN]:
            click.echo(f"mpsandbox: skipped {problem}", err=True)
        more = len(fixture.problems) - PROBLEMS_SHOWN
        if more > 0:
            click.echo(f"mpsandbox: ... and {more} more skipped in {path}", err=True)
        note = f"{path}: {plural(len(fixture.requests), 'request')} ({fixture.format_name})"
        if fixture.problems:
            note += f", {len(fixture.problems):,} skipped"
        for reason, n in sorted(fixture.ignored.items()):
            note += f", {n:,} ignored ({reason})"
        click.echo(note, err=True)
        requests.extend(fixture.requests)
    return requests


@click.command("export")
@click.argument("query", nargs=-1)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(allow_dash=True, path_type=Path),
    help="The file to write (- for stdout).",
)
@click.option(
    "--events-only",
    is_flag=True,
    help="Write the events as received, one per line (after a format line), instead of "
    "the requests as received.",
)
@db_option
def export_cmd(query: tuple[str, ...], output: Path, events_only: bool, **opts: Any) -> None:
    """Write stored traffic to a fixture file: by default every request as received (one
    mpsandbox-request/1 JSON object per line, body bytes exact), which replays exactly.

    QUERY is the filter language of the TUI and the API (`is:invalid stream:x since:10m`;
    quote it, or put -- before a negated term): only the requests of matching events are
    written. Without it, every POST and every legacy beacon is (including those that carried
    no events).
    """
    from mpsandbox.fixtures.export import export
    from mpsandbox.query import QuerySyntaxError
    from mpsandbox.store import StoreError

    db = _existing_db(opts)
    try:
        result = export(db, output, query=_query(query), events_only=events_only)
    except QuerySyntaxError as exc:
        raise MpsandboxError(f"query: {exc}") from None
    except (StoreError, OSError) as exc:
        raise MpsandboxError(str(exc)) from None
    what = "event" if events_only else "request"
    click.echo(
        f"exported {plural(result.count, what)} to {result.path} ({result.format})", err=True
    )


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@local_options
@strict_option
def import_cmd(files: tuple[Path, ...], strict: bool, **opts: Any) -> None:
    """Judge the requests of fixture FILES through the intake's own path and store them,
    each as received at its original time when the file records one (else now).

    FILES may be mpsandbox exports (requests or events), an EventGate devserver events.json,
    HAR files from browser devtools (POSTs to /v…/events) or JSON arrays of events; the
    format is detected from the content. Invalid events are stored as such: exit 0.
    """
    from mpsandbox.fixtures.replay import ReplayOptions

    requests = _read(files, strict)
    settings = build_settings(**opts)
    options = ReplayOptions(pacing="fast", keep_received_at=True, all_headers=True)
    progress = _run_replay(requests, None, settings, options, verb="imported")
    sys.exit(0 if progress.ok else 1)


@click.command("replay")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--to",
    "url",
    default=None,
    metavar="URL",
    help="Post to this EventGate-compatible intake (http://127.0.0.1:8192/v1/events, a real "
    "EventGate, another sandbox); a URL without a path posts to each request's own path. "
    "Without --to: the local pipeline on --db.",
)
@click.option("--rate", type=float, default=None, metavar="N", help="Send N requests per second.")
@click.option("--fast", is_flag=True, help="Send as fast as the target answers (--concurrency).")
@click.option(
    "--original-timing",
    is_flag=True,
    help="Keep the gaps between the original receive times.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="Requests in flight with --fast, --rate and --original-timing (otherwise one at a "
    "time, in order).",
)
@click.option(
    "--dt",
    type=click.Choice(["keep", "shift", "now"]),
    default="keep",
    show_default=True,
    help="dt, meta.dt and client_dt: as sent; shifted together so the earliest is now; or "
    "each set to its send time.",
)
@click.option(
    "--ids",
    type=click.Choice(["keep", "fresh"]),
    default="keep",
    show_default=True,
    help="fresh: new session, pageview and meta ids (same shape, old->new kept consistent).",
)
@click.option(
    "--timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds each request may take before it counts as a transport failure.",
)
@local_options
@strict_option
def replay_cmd(
    files: tuple[Path, ...],
    url: str | None,
    rate: float | None,
    fast: bool,
    original_timing: bool,
    concurrency: int,
    dt: str,
    ids: str,
    timeout: float,
    strict: bool,
    **opts: Any,
) -> None:
    """Send the requests of fixture FILES again, now: to an intake URL (--to) or into the
    local pipeline (--db), one at a time in order unless paced otherwise.

    A summary counts the answers by HTTP status (and, locally, events by verdict). Invalid
    events are outcomes, not failures: exit 0. Exit 1 when requests could not be delivered
    (connection refused, timeouts); 2 when a file is unusable.
    """
    from mpsandbox.fixtures.replay import ReplayOptions

    paced = [
        n
        for n, on in (("--rate", rate), ("--fast", fast), ("--original-timing", original_timing))
        if on
    ]
    if len(paced) > 1:
        raise click.UsageError(f"choose one of {', '.join(paced)}")
    local_only = [
        k
        for k in (
            "db",
            "schema_dirs",
            "remote_bases",
            "stream_config",
            "experiments_file",
        )
        if opts.get(k)
    ]
    if url and local_only:
        raise click.UsageError(
            "--db, --schemas, --stream-config and --experiments apply to the local pipeline; "
            "with --to, the target judges"
        )
    pacing = "rate" if rate else "fast" if fast else "original" if original_timing else "sequential"
    options = ReplayOptions(
        pacing=pacing,
        rate=rate,
        concurrency=concurrency,
        dt=dt,  # type: ignore[arg-type]
        ids=ids,  # type: ignore[arg-type]
        timeout=timeout,
    )
    try:
        options.check()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    requests = _read(files, strict)
    settings = None if url else build_settings(**opts)
    progress = _run_replay(requests, url, settings, options, verb="replayed")
    sys.exit(0 if progress.ok else 1)


def _run_replay(requests, url, settings, options, *, verb: str):
    """Run a replay with a progress bar on a terminal; print the summary; return it."""
    from mpsandbox.fixtures.replay import replay
    from mpsandbox.platform.experiments import ExperimentsError
    from mpsandbox.platform.stream_configs import StreamConfigError
    from mpsandbox.store import StoreError

    if settings is not None:
        check_stream_config(settings)
        check_experiments(settings)
    bar = None
    shown = 0
    if sys.stderr.isatty() and requests:
        label = {"imported": "importing", "replayed": "replaying"}.get(verb, verb)
        bar = click.progressbar(length=len(requests), label=label, file=sys.stderr)
        bar.__enter__()

    def on_progress(progress) -> None:
        nonlocal shown
        if bar is not None and progress.done > shown:
            bar.update(progress.done - shown)
            shown = progress.done

    cancel = threading.Event()
    try:
        progress = replay(
            requests,
            to=url,
            settings=settings,
            options=options,
            on_progress=on_progress,
            cancel=cancel,
        )
    except ValueError as exc:
        raise MpsandboxError(str(exc)) from None
    except (StoreError, StreamConfigError, ExperimentsError) as exc:
        raise MpsandboxError(str(exc)) from None
    except KeyboardInterrupt:
        raise MpsandboxError("interrupted", 130) from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"{verb} {progress.summary()}", err=True)
    if progress.dts_changed or progress.ids_changed:
        click.echo(
            f"rewrote {progress.dts_changed:,} timestamps and {progress.ids_changed:,} ids",
            err=True,
        )
    if progress.transport_failures:
        click.echo(
            f"mpsandbox: {plural(progress.transport_failures, 'request')} not delivered "
            f"(last: {progress.last_failure})",
            err=True,
        )
    if progress.aborted:
        click.echo(f"mpsandbox: {progress.aborted}", err=True)
    return progress


@click.command("bundle")
@click.argument("query", nargs=-1)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="The bundle to write (FILE.tar.gz).",
)
@local_options
def bundle_cmd(query: tuple[str, ...], output: Path, **opts: Any) -> None:
    """Pack the events matching QUERY (every event without one) into a .tar.gz someone else
    can open: the events and their requests as a small store, the schema files that judged
    them (with their $ref'd fragments), the stream configs, the experiments file, the local
    overrides and a manifest.json. Give the same --schemas, --stream-config and
    --experiments as the intake ran with.
    """
    from mpsandbox.fixtures.bundle import BundleError, make_bundle
    from mpsandbox.query import QuerySyntaxError
    from mpsandbox.store import StoreError

    db = _existing_db(opts)
    settings = build_settings(**opts)
    try:
        manifest = make_bundle(db, output, query=_query(query), settings=settings)
    except QuerySyntaxError as exc:
        raise MpsandboxError(f"query: {exc}") from None
    except (BundleError, StoreError) as exc:
        raise MpsandboxError(str(exc)) from None
    counts = manifest["counts"]
    click.echo(
        f"bundled {plural(counts['events'], 'event')} of {plural(counts['requests'], 'request')}, "
        f"{plural(counts['schema_files'], 'schema file')} and "
        f"{plural(counts['overrides'], 'override')} "
        f"into {output}"
    )
    for miss in manifest["schemas"]["missing"]:
        click.echo(
            f"mpsandbox: not included: {miss.get('uri') or miss.get('location')}: "
            f"{miss.get('why')}",
            err=True,
        )


@click.command("open")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--print",
    "print_only",
    is_flag=True,
    help="Print what the bundle holds instead of opening the terminal UI (the default "
    "without a terminal).",
)
@click.option(
    "--extract-to",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Extract into this folder and keep it (default: a temporary folder, removed on exit).",
)
@click.option(
    "--max-extract-mb",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    metavar="N",
    help="Refuse a bundle whose files add up to more than N MiB once extracted.",
)
def open_cmd(bundle: Path, print_only: bool, extract_to: Path | None, max_extract_mb: int) -> None:
    """Open a bundle made by `mpsandbox bundle`: extracted safely (absolute paths, '..' and
    links leaving it are refused) and shown read-only in the terminal UI, judged by the
    bundle's own schemas, stream configs and experiments. A corrupt or truncated bundle
    exits 2 with one line saying why.
    """
    import shutil
    import tempfile

    from mpsandbox.fixtures.bundle import BundleError
    from mpsandbox.fixtures.unbundle import extract, summary
    from mpsandbox.store import StoreError

    if extract_to is not None:
        extract_to.mkdir(parents=True, exist_ok=True)
        dest, temporary = extract_to, False
    else:
        dest, temporary = Path(tempfile.mkdtemp(prefix="mpsandbox-open-")), True
    try:
        try:
            opened = extract(bundle, dest, max_bytes=max_extract_mb * 2**20)
            lines = summary(opened)
        except (BundleError, StoreError) as exc:
            raise MpsandboxError(str(exc).splitlines()[0]) from None
        if print_only or not (sys.stdin.isatty() and sys.stdout.isatty()):
            for line in lines:
                click.echo(line)
            return
        from mpsandbox.cli.runners import run_tui

        sys.exit(run_tui(opened.settings(build_settings()), listen=False))
    finally:
        if temporary:
            shutil.rmtree(dest, ignore_errors=True)
