"""The option bundles the commands share, and the one place flags become settings.

Each bundle is a decorator (as sqlite-utils and Datasette's ``publish/common.py`` do), so two
commands that judge events take the very same flags, and :func:`build_settings` turns any of
them into a :class:`~mpsandbox.config.Settings` the core understands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mpsandbox.config import (
    DEFAULT_BEACON_PATH,
    DEFAULT_INTAKE_PATH,
    MAX_PORT,
    MIN_PORT,
    Settings,
    from_environment,
    parse_duration,
    parse_size,
    split_hosts,
)
from mpsandbox.errors import MpsandboxError


def _apply(fn, options):
    """Decorate ``fn`` with ``options`` so that --help lists them in the order given (click
    lists options in the reverse order of decoration)."""
    for option in reversed(options):
        fn = option(fn)
    return fn


def remote_options(fn):
    """The remote schema repositories' options, the same on every command that reads
    schemas (see mpsandbox/schemas/configured.py for the order)."""
    options = [
        click.option(
            "--offline",
            is_flag=True,
            default=None,
            help="Do not contact schema.wikimedia.org (or any remote): remote schemas come "
            "from the on-disk cache only. Env: MPSANDBOX_OFFLINE=1.",
        ),
        click.option(
            "--remote-schema-base",
            "remote_bases",
            multiple=True,
            metavar="URL",
            help="Fetch schemas from this base URL too, after the public repositories "
            "(repeatable). MPSANDBOX_REMOTE_SCHEMAS (space-separated URLs) replaces the "
            "public pair.",
        ),
        click.option(
            "--remote-timeout",
            type=click.FloatRange(min=0.1),
            default=None,
            metavar="SECONDS",
            help="Longest a remote schema fetch may delay an answer (default 3).",
        ),
        click.option(
            "--remote-schemas",
            is_flag=True,
            help="No effect, kept for old scripts: remote schemas are on by default.",
        ),
    ]
    return _apply(fn, options)


def schema_options(fn):
    """Options every command that judges events shares, so they all judge alike."""
    options = [
        click.option(
            "--schemas",
            "schema_dirs",
            multiple=True,
            type=click.Path(path_type=Path),
            help="A schema repository checkout or directory (repeatable; searched in order, "
            "before schema.wikimedia.org and the built-ins). Env: MPSANDBOX_SCHEMAS.",
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
    ]
    # the remote repositories' options come right after --schemas in --help
    return _apply(fn, [*options[:1], remote_options, *options[1:]])


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
    # --remote-schemas is accepted and ignored: remote schemas are on unless --offline.
    if opts.get("remote_bases"):
        changes["remote_schemas"] = tuple(dict.fromkeys([*s.remote_schemas, *opts["remote_bases"]]))
    if opts.get("offline"):
        changes["offline"] = True
    if opts.get("remote_timeout") is not None:
        changes["remote_timeout"] = float(opts["remote_timeout"])
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
    for key, setting, parse, what in _MEASURED:
        if opts.get(key):
            changes[setting] = _measure(opts[key], parse, what, "--" + key.replace("_", "-"))
    if opts.get("intake_paths"):
        paths = [p if p.startswith("/") else "/" + p for p in opts["intake_paths"]]
        changes["intake_paths"] = tuple(dict.fromkeys([DEFAULT_INTAKE_PATH, *paths]))
    if opts.get("beacon_paths"):
        paths = [p if p.startswith("/") else "/" + p for p in opts["beacon_paths"]]
        changes["beacon_paths"] = tuple(dict.fromkeys([DEFAULT_BEACON_PATH, *paths]))
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
    return s.with_(**changes)


def _positive_duration(text: str) -> float:
    seconds = parse_duration(text)
    if not seconds > 0:
        raise ValueError(text)
    return seconds


#: Options given as a size or a duration: (option, setting, parser, what it must be).
_MEASURED = (
    ("max_body", "max_body", parse_size, "a size"),
    ("read_timeout", "read_timeout", _positive_duration, "a positive duration"),
    ("max_age", "max_age_s", parse_duration, "a duration"),
    ("stream_config_refresh", "stream_config_refresh_s", parse_duration, "a duration"),
)


def _measure(text: str, parse: Callable[[str], Any], what: str, flag: str) -> Any:
    try:
        return parse(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not {what}", param_hint=flag) from None


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
        raise StreamConfigError(f"stream config {exc}") from None


def check_experiments(settings: Settings) -> None:
    """Refuse an experiments file that cannot be used, in one line, before anything starts
    (exit 2), as a broken stream config file is."""
    from mpsandbox.platform.experiments import ExperimentsError, load_experiments

    if not settings.experiments_file:
        return
    try:
        load_experiments(settings.experiments_file)
    except ExperimentsError as exc:
        raise MpsandboxError(f"experiments {exc}") from None


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
            "--read-timeout",
            default=None,
            metavar="DURATION",
            help="Close a connection whose request headers, or then its body, take longer "
            "than this to arrive; also the idle keep-alive time (default 10s).",
        ),
        click.option(
            "--intake-path",
            "intake_paths",
            multiple=True,
            metavar="PATH",
            help="Extra intake paths, e.g. /evt-103e/v2/events (repeatable).",
        ),
        click.option(
            "--beacon-path",
            "beacon_paths",
            multiple=True,
            metavar="PATH",
            help="Extra paths for legacy EventLogging beacons ($wgEventLoggingBaseUri), "
            "besides /beacon/event (repeatable).",
        ),
        click.option(
            "--stream-config-refresh",
            default=None,
            metavar="DURATION",
            help="How often a stream config URL is fetched again (default 60s; 0 never). "
            "A file is re-read when it changes.",
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
    # after the schema options, so that these come first in --help
    return _apply(schema_options(fn), options)


def db_option(fn):
    """``--db``, for the commands that work on serve's database without running it."""
    return click.option(
        "--db",
        type=click.Path(path_type=Path),
        default=None,
        help="SQLite database file, as for serve (default: the user data directory).",
    )(fn)


def metrics_dir_option(fn):
    return click.option(
        "--metrics",
        "metrics_dirs",
        multiple=True,
        type=click.Path(path_type=Path),
        metavar="DIR|FILE",
        help="Metric definitions (YAML) to use as well as the checkout's metrics/ "
        "(repeatable; a later definition of the same name wins).",
    )(fn)
