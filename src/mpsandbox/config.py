"""Settings: built-in defaults < environment (MPSANDBOX_*) < command-line flags.

One frozen object is handed to the core, so every face (serve, TUI, validate) runs the same
intake the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import platformdirs

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8192
DEFAULT_INTAKE_PATH = "/v1/events"
DEFAULT_BEACON_PATH = "/beacon/event"
DEFAULT_MAX_BODY = 4 * 1024 * 1024
DEFAULT_BACKLOG = 100_000
#: Seconds a client may take to send a request's headers (from connecting, or from the end
#: of its previous answer), and then again its body: slow clients cannot pin the server.
DEFAULT_READ_TIMEOUT = 10.0


def default_db_path() -> Path:
    return platformdirs.user_data_path("mpsandbox") / "mpsandbox.db"


def default_cache_dir() -> Path:
    """Where fetched schemas are kept: ``MPSANDBOX_CACHE``, else the user cache folder."""
    if os.environ.get("MPSANDBOX_CACHE"):
        return Path(os.environ["MPSANDBOX_CACHE"])
    return platformdirs.user_cache_path("mpsandbox") / "schemas"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def default_offline() -> bool:
    """``MPSANDBOX_OFFLINE=1``. Read by the default itself, not only by
    :func:`from_environment`, so that settings made in code (tests, the TUI fixture) never
    reach the network when the environment says offline."""
    return _env_flag("MPSANDBOX_OFFLINE")


def default_remote_schemas() -> tuple[str, ...]:
    """``MPSANDBOX_REMOTE_SCHEMAS`` (space-separated base URLs), else the public pair."""
    from mpsandbox.schemas.configured import PUBLIC_REMOTES

    given = os.environ.get("MPSANDBOX_REMOTE_SCHEMAS")
    if given is not None and given.strip():
        return tuple(dict.fromkeys(given.split()))
    return PUBLIC_REMOTES


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db: Path = field(default_factory=default_db_path)
    schema_dirs: tuple[Path, ...] = ()
    #: Remote schema repositories, searched after schema_dirs (see schemas/configured.py).
    remote_schemas: tuple[str, ...] = field(default_factory=default_remote_schemas)
    #: Remote repositories are read from the cache only, never the network.
    offline: bool = field(default_factory=default_offline)
    #: Longest a remote fetch may delay an answer, in seconds.
    remote_timeout: float = 3.0
    use_builtin_schemas: bool = True
    cache_dir: Path = field(default_factory=default_cache_dir)
    max_body: int = DEFAULT_MAX_BODY
    read_timeout: float = DEFAULT_READ_TIMEOUT
    intake_paths: tuple[str, ...] = (DEFAULT_INTAKE_PATH,)
    #: Where legacy EventLogging beacons arrive (`$wgEventLoggingBaseUri`), by GET or POST.
    beacon_paths: tuple[str, ...] = (DEFAULT_BEACON_PATH,)
    fill_ins: bool = True
    secure_schemas: bool = True
    allow_absolute_schema_uris: bool = False
    #: The schema directories stand for EventGate base URIs written with a trailing slash
    #: (as in EventGate's own test config, `schema_base_uris: [test/schemas/]`): then a
    #: `$schema` without a leading slash resolves too. Production's bases have none.
    schema_base_slash: bool = False
    max_events: int | None = None
    max_age_s: float | None = None
    max_backlog: int = DEFAULT_BACKLOG
    #: How long a write waits for another process's lock before the request gets a 503.
    busy_timeout: float = 5.0
    #: Write from a child process (see store/process_writer.py) rather than a thread.
    writer_process: bool = True
    watch_schemas: bool = True
    #: After a schema change, judge again this many of the newest stored events of the
    #: schemas it touched (None: all of them).
    revalidate_limit: int | None = 10_000
    #: Stream configs (a file, or a dev wiki's `api.php?action=streamconfigs` URL); None
    #: means none: every stream is allowed, like `$wgEventLoggingStreamNames = false`.
    stream_config: str | None = None
    #: How often a stream config URL is fetched again (a file is re-read when it changed).
    stream_config_refresh_s: float = 60.0
    #: Test Kitchen experiments (YAML or JSON; see platform/experiments.py); None: none.
    experiments_file: str | None = None
    #: Instrument configs served at /api/v1/instruments: a YAML/JSON file or a folder of
    #: them (see intake/override_routes.py); None: an empty list.
    instruments: str | None = None
    #: The dev wiki's URL, shown with the experiment overrides' ?mpo=... added.
    wiki_url: str | None = None
    #: A chaos spec (chaos.py) to store when the intake starts ("off" turns it off); None
    #: leaves the stored setting as it is.
    chaos: str | None = None
    #: Metric definitions (YAML files or folders) the Metrics screen uses besides the
    #: checkout's metrics/ (see mpsandbox/metrics/definitions.py).
    metrics_dirs: tuple[Path, ...] = ()
    #: Host names a request may be addressed to besides localhost, *.localhost and IP
    #: literals (``.name`` allows name and every name under it); see intake/exposure.py.
    allowed_hosts: tuple[str, ...] = ()
    #: Store Cookie, Authorization, Proxy-Authorization and Set-Cookie request headers as
    #: received; by default they are replaced by a marker at capture (redaction.py).
    keep_secrets: bool = False
    #: Events `GET /v1/_test/events` posts, as EventGate's `test_events` option.
    test_events: tuple[dict, ...] = (
        {
            "$schema": "/mpsandbox/smoke_test/1.0.0",
            "meta": {"stream": "mpsandbox.smoke_test"},
            "message": "mpsandbox smoke test",
        },
    )

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)


def parse_size(text: str) -> int:
    """`4mb`, `512k`, `1048576` -> bytes (EventGate writes `max_body_size: 4mb`)."""
    t = text.strip().lower().replace(" ", "")
    units = {
        "gib": 1 << 30,
        "gb": 1 << 30,
        "g": 1 << 30,
        "mib": 1 << 20,
        "mb": 1 << 20,
        "m": 1 << 20,
        "kib": 1 << 10,
        "kb": 1 << 10,
        "k": 1 << 10,
        "b": 1,
    }
    for suffix, mult in units.items():
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * mult)
    return int(t)


def parse_duration(text: str) -> float:
    """`30s`, `15m`, `12h`, `7d` -> seconds."""
    t = text.strip().lower()
    mult = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if t and t[-1] in mult:
        return float(t[:-1]) * mult[t[-1]]
    return float(t)


MIN_PORT, MAX_PORT = 0, 65535


def parse_port(text: str | int) -> int:
    """A TCP port, 1..65535, or 0 for any free port; ValueError for anything else (the
    OS would silently wrap 99999 to 34463)."""
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a port (1..65535, or 0 for any free port)") from None
    if not MIN_PORT <= port <= MAX_PORT:
        raise ValueError(f"{text} is not a port (1..65535, or 0 for any free port)")
    return port


def split_hosts(text: str) -> tuple[str, ...]:
    """``MPSANDBOX_ALLOWED_HOSTS``: names separated by spaces or commas."""
    return tuple(n for n in text.replace(",", " ").split() if n)


def from_environment(base: Settings | None = None) -> Settings:
    """Apply MPSANDBOX_* variables over `base`. (MPSANDBOX_OFFLINE, MPSANDBOX_REMOTE_SCHEMAS
    and MPSANDBOX_CACHE are read by the fields' defaults.)"""
    s = base or Settings()
    env = os.environ
    changes: dict = {}
    if "MPSANDBOX_HOST" in env:
        changes["host"] = env["MPSANDBOX_HOST"]
    if "MPSANDBOX_PORT" in env:
        changes["port"] = parse_port(env["MPSANDBOX_PORT"])
    if "MPSANDBOX_DB" in env:
        changes["db"] = Path(env["MPSANDBOX_DB"])
    if "MPSANDBOX_SCHEMAS" in env:
        changes["schema_dirs"] = tuple(
            Path(p) for p in env["MPSANDBOX_SCHEMAS"].split(os.pathsep) if p
        )
    if "MPSANDBOX_MAX_BODY" in env:
        changes["max_body"] = parse_size(env["MPSANDBOX_MAX_BODY"])
    if "MPSANDBOX_READ_TIMEOUT" in env:
        changes["read_timeout"] = parse_duration(env["MPSANDBOX_READ_TIMEOUT"])
    if env.get("MPSANDBOX_STREAM_CONFIG"):
        changes["stream_config"] = env["MPSANDBOX_STREAM_CONFIG"]
    if env.get("MPSANDBOX_EXPERIMENTS"):
        changes["experiments_file"] = env["MPSANDBOX_EXPERIMENTS"]
    if env.get("MPSANDBOX_ALLOWED_HOSTS"):
        changes["allowed_hosts"] = split_hosts(env["MPSANDBOX_ALLOWED_HOSTS"])
    if env.get("MPSANDBOX_WIKI_URL"):
        changes["wiki_url"] = env["MPSANDBOX_WIKI_URL"]
    return replace(s, **changes)


def settings_to_json(settings: Settings) -> dict:
    """Settings as plain JSON, to start an intake in another process exactly alike."""
    out: dict = {}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = [str(v) if isinstance(v, Path) else v for v in value]
        out[f.name] = value
    return out


def settings_from_json(data: dict) -> Settings:
    """The inverse of :func:`settings_to_json`; unknown keys are refused, not ignored."""
    known = {f.name: f for f in fields(Settings)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    changes: dict = {}
    for name, value in data.items():
        if name in ("db", "cache_dir"):
            value = Path(value)
        elif name in ("schema_dirs", "metrics_dirs"):
            value = tuple(Path(v) for v in value)
        elif isinstance(value, list):
            value = tuple(value)
        changes[name] = value
    return Settings(**changes)
