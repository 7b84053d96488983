"""`mpsandbox chaos`: answer a share of intake requests badly, set in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mpsandbox.cli.options import build_settings, db_option


def _open_chaos(opts: dict[str, Any]):
    from mpsandbox.chaos import ChaosStore

    settings = build_settings(**opts)
    return ChaosStore(settings.db), settings.db


def _db_flag(db: Path) -> str:
    """` --db PATH` for commands a user copies, unless PATH is the default."""
    from mpsandbox.config import default_db_path

    return "" if Path(db) == default_db_path() else f" --db {db}"


def _was(previous: dict[str, Any]) -> str:
    return f" (was {previous['spec']})" if previous.get("on") else " (was off)"


@click.group()
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
        raise ChaosError(f"chaos spec {exc}\n  grammar: {GRAMMAR}") from None
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
