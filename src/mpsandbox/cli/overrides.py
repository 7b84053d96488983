"""`mpsandbox override`: local experiment groups, sample rates and flags, kept in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mpsandbox.cli.options import _apply, build_settings
from mpsandbox.errors import MpsandboxError


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
    return _apply(fn, options)


def _open_overrides(opts: dict[str, Any]):
    from mpsandbox.overrides import Overrides
    from mpsandbox.platform.experiments import ExperimentsError, load_experiments

    settings = build_settings(**opts)
    experiments = None
    if settings.experiments_file:
        try:
            experiments = load_experiments(settings.experiments_file)
        except ExperimentsError as exc:
            raise MpsandboxError(f"experiments {exc}") from None
    return Overrides(settings.db, experiments=experiments, wiki_url=settings.wiki_url)


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


@click.group()
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
    from mpsandbox.overrides import parse_cli_value

    overrides = _open_overrides(opts)
    change = overrides.set(kind, key, parse_cli_value(kind, value), "cli")
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
            raise MpsandboxError(f"no {kind} override {key!r}", exit_code=1)
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
