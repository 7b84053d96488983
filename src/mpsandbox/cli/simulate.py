"""``mpsandbox simulate`` and ``mpsandbox demo``: traffic without a wiki."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click

from mpsandbox.cli.options import (
    build_settings,
    check_experiments,
    check_stream_config,
    schema_options,
    server_options,
)
from mpsandbox.cli.runners import run_tui
from mpsandbox.cli.serve import serve
from mpsandbox.config import DEFAULT_INTAKE_PATH
from mpsandbox.errors import MpsandboxError

#: The demo's gentle pace, events per second.
DEMO_RATE = 8.0


def _demo_configs(opts: dict[str, Any]) -> None:
    """Default --stream-config, --experiments and --instruments to the demo's own."""
    from mpsandbox.instruments.definitions import default_location
    from mpsandbox.simulate import DEMO_EXPERIMENTS, DEMO_STREAMS

    opts["stream_config"] = opts.get("stream_config") or str(DEMO_STREAMS)
    opts["experiments_file"] = opts.get("experiments_file") or str(DEMO_EXPERIMENTS)
    if not opts.get("instruments"):
        location = default_location()
        opts["instruments"] = str(location) if location else None


@click.command()
@click.option(
    "--to",
    "to",
    default=None,
    metavar="URL",
    help="Post to this intake URL "
    "(e.g. http://127.0.0.1:8192/v1/events); default: the local pipeline (--db).",
)
@click.option(
    "--users",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Simulated users active at once (without --duration: in all).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=None,
    metavar="EVENTS/S",
    help="At most this many events per second (default: as fast as answered).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=None,
    metavar="S",
    help="Keep new users arriving for S seconds (0: until interrupted); default: "
    "each user visits once.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same traffic.")
@click.option(
    "--bugs", is_flag=True, help="Inject one of each labelled instrument mistake (see --manifest)."
)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the injected bugs (bug, meta.id, expected finding or validation "
    "error) here as JSON.",
)
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=None,
    help="The local pipeline's database (default: the user data directory).",
)
@click.option(
    "--instruments",
    default=None,
    metavar="DIR",
    help="Instrument definitions that drive the traffic (default: instruments/).",
)
@click.option(
    "--experiments",
    "experiments_file",
    default=None,
    metavar="FILE",
    help="Experiments the users are enrolled in (default: the demo's).",
)
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(min=0),
    default=0,
    metavar="S",
    help="With --to: wait up to S seconds for the intake to answer first.",
)
@schema_options
def simulate(
    to: str | None,
    users: int,
    rate: float | None,
    duration: float | None,
    seed: int,
    bugs: bool,
    manifest: Path | None,
    wait_s: float,
    **opts: Any,
) -> None:
    """Send traffic as the real producers do, driven by the instrument definitions.

    The JS library (arrays of N, text/plain), EventLogging (one bare object), Test Kitchen
    (arrays of one) and the Android/iOS apps (application/json, 30-minute sessions), with
    each stream's sampling applied as the clients apply it (out-of-sample events are not
    sent) and users enrolled in experiments (mw-user hashing, edge-unique 'awaiting').
    Without --to, feeds the local pipeline (--db). With --to, the intake should load the
    same --stream-config and --experiments for its findings to apply (default for both:
    the demo's built-in ones, see `mpsandbox demo`; schemas as every command finds them:
    --schemas, schema.wikimedia.org, the built-ins). Exits 1 when
    requests failed to reach the intake.
    """
    from mpsandbox.simulate.run import SimOptions, make_planner
    from mpsandbox.simulate.run import simulate as run_simulation

    _demo_configs(opts)
    settings = build_settings(**opts)
    check_stream_config(settings)
    check_experiments(settings)
    planner = make_planner(
        instruments=settings.instruments,
        stream_config=settings.stream_config,
        experiments_file=settings.experiments_file,
        seed=seed,
        bugs=bugs,
    )
    if not planner.behaviours:
        raise MpsandboxError("no instrument definitions to simulate (see --instruments)")
    if to and wait_s and not _wait_for(to, wait_s):
        raise MpsandboxError(f"{to} did not answer within {wait_s:g} s", exit_code=1)
    options = SimOptions(users=users, rate=rate, duration=duration, seed=seed, bugs=bugs)
    # Ctrl-C and SIGTERM stop the run after the POSTs in flight; the summary still prints.
    cancel = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: cancel.set())
    try:
        result = run_simulation(planner, to=to, settings=settings, options=options, cancel=cancel)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    click.echo(result.summary())
    if manifest is not None:
        from mpsandbox import jsonio

        manifest.write_text(jsonio.pretty({"bugs": result.manifest}) + "\n")
    sys.exit(0 if result.ok else 1)


def _wait_for(url: str, seconds: float) -> bool:
    """Whether the intake at ``url`` answers ``GET /_info`` within ``seconds``."""
    import urllib.error
    import urllib.request

    from yarl import URL

    info = str(URL(url).with_path("/_info").with_query(None))
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(info, timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def simulator_command(
    url: str,
    *,
    rate: float = DEMO_RATE,
    wait_s: float = 60.0,
    stream_config: str | None = None,
    experiments_file: str | None = None,
    instruments: str | None = None,
    users: int = 4,
) -> list[str]:
    """The child process the demo runs: the simulator posting to ``url`` until stopped."""
    cmd = [
        sys.executable,
        "-m",
        "mpsandbox",
        "simulate",
        "--to",
        url,
        "--duration",
        "0",
        "--rate",
        f"{rate:g}",
        "--users",
        str(users),
        "--wait",
        f"{wait_s:g}",
        "--seed",
        str(int(time.time())),
        # One of each labelled instrument mistake, early: the Errors screen and the findings
        # show what mpsandbox catches, beside the clean traffic.
        "--bugs",
    ]
    for flag, value in (
        ("--stream-config", stream_config),
        ("--experiments", experiments_file),
        ("--instruments", instruments),
    ):
        if value:
            cmd += [flag, value]
    return cmd


def start_simulator(url: str, log: Path | None = None, **kwargs: Any) -> subprocess.Popen:
    """Start the demo's simulator as a child process (output to ``log``, never the
    terminal the TUI draws on). It waits for the intake to listen before sending."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            simulator_command(url, **kwargs), stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    finally:
        if log is not None:
            out.close()


def stop_simulator(proc: subprocess.Popen) -> None:
    """Stop the child started by :func:`start_simulator` (that process only)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def demo_settings(opts: dict[str, Any]):
    """The demo's settings from serve options (``opts`` is completed in place): the demo's
    stream configs, experiments and instruments unless given; schemas as every command
    finds them (schemas/configured.py)."""
    _demo_configs(opts)
    return build_settings(**opts)


@click.command()
@server_options
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1),
    default=DEMO_RATE,
    show_default=True,
    metavar="EVENTS/S",
    help="The simulator's pace.",
)
def demo(rate: float, **opts: Any) -> None:
    """Open the terminal UI with the simulator running inside: live data, no wiki needed.

    Uses the demo's built-in stream configs and experiments and the example instruments
    (override with --stream-config, --experiments, --instruments), a fresh database in a
    temporary folder unless --db is given, and the schemas every command uses (--schemas,
    schema.wikimedia.org, cached, then the built-ins). Without a terminal it runs headless
    (serve and the simulator).
    """
    with contextlib.ExitStack() as stack:
        if not opts.get("db"):
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="mpsandbox-demo-"))
            opts["db"] = Path(folder) / "demo.db"
        settings = demo_settings(opts)
        if settings.port == 0:
            raise click.BadParameter("the demo needs a fixed port", param_hint="--port")
        check_stream_config(settings)
        check_experiments(settings)
        url = f"http://{settings.host}:{settings.port}{DEFAULT_INTAKE_PATH}"
        proc = start_simulator(
            url,
            log=Path(settings.db).with_suffix(".simulator.log"),
            rate=rate,
            stream_config=settings.stream_config,
            experiments_file=settings.experiments_file,
            instruments=settings.instruments,
        )
        stack.callback(stop_simulator, proc)
        if sys.stdin.isatty() and sys.stdout.isatty():
            code = run_tui(settings)
        else:
            click.echo(
                f"mpsandbox: no terminal, so running headless: serve, and the simulator "
                f"posting to {url}",
                err=True,
            )
            try:
                ctx = click.get_current_context()
                ctx.invoke(serve, output="none", **opts)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    sys.exit(code)
