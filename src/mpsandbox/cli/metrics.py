"""`mpsandbox metrics`: metric previews over the captured events.

Thin: definitions in (``mpsandbox.metrics``), one read transaction over the store, a table
or JSON out, an exit status.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from mpsandbox.cli.options import metrics_dir_option
from mpsandbox.errors import MpsandboxError


def _window(since: str | None, until: str | None):
    from mpsandbox.query import QuerySyntaxError, parse_query

    terms = []
    for key, value in (("since", since), ("until", until)):
        if value:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            terms.append(f'{key}:"{escaped}"')
    if not terms:
        return None
    try:
        return parse_query(" ".join(terms))
    except QuerySyntaxError as exc:
        raise MpsandboxError(exc.message) from None


@click.command("metrics")
@click.argument("names", nargs=-1)
@click.option(
    "--by",
    default=None,
    metavar="FIELD[,FIELD]",
    help="Group by this event field instead of each metric's own `by` "
    "(experiment.assigned, stream, agent.client_platform, ...); `none` for no groups.",
)
@click.option(
    "--since",
    default=None,
    metavar="WHEN",
    help="Only events received at or after WHEN: an ISO date or time, or a time back "
    "from now (30m, 2h, 1d), as since: in the filter language.",
)
@click.option(
    "--until",
    default=None,
    metavar="WHEN",
    help="Only events received before WHEN (same forms as --since).",
)
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=None,
    help="SQLite database file, as for serve (default: the user data directory).",
)
@metrics_dir_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="A table per metric, or one JSON document (shape in metrics/README.md).",
)
def metrics(
    names: tuple[str, ...],
    by: str | None,
    since: str | None,
    until: str | None,
    db: Path | None,
    metrics_dirs: tuple[Path, ...],
    fmt: str,
) -> None:
    """Compute metric previews (ratios, funnels) from the captured events.

    Each metric's numerator and denominator (or funnel steps) are queries in the filter
    language, counted per unit (event, pageview, session, subject, funnel_entry_token) with
    a 95% Wilson interval. NAMES picks metrics (default: all). Exits 1 when a definition
    could not be loaded or a metric not computed (the rest are still shown), 2 when
    nothing can be computed.
    """
    from mpsandbox import jsonio
    from mpsandbox.cli.options import build_settings
    from mpsandbox.metrics import compute_stored, default_metric_dirs, load_definitions, parse_by
    from mpsandbox.metrics.report import format_text, report_dict
    from mpsandbox.store import StoreError, StoreReader

    path = build_settings(db=db).db
    locations = [*default_metric_dirs(), *metrics_dirs]
    definitions = load_definitions(locations)
    chosen = definitions.metrics
    if names:
        unknown = [n for n in names if definitions.get(n) is None]
        if unknown:
            known = ", ".join(m.name for m in definitions.metrics) or "none"
            raise MpsandboxError(f"no metric named {', '.join(unknown)} (defined: {known})")
        chosen = [definitions.get(n) for n in dict.fromkeys(names)]  # type: ignore[misc]
    if not chosen and not definitions.errors:
        where = ", ".join(str(p) for p in locations) or "nowhere (no checkout metrics/)"
        raise MpsandboxError(f"no metric definitions found in {where}; give --metrics DIR")
    group_by = None
    if by is not None:
        try:
            group_by = parse_by(by, "--by")
        except ValueError as exc:
            raise MpsandboxError(f"--by: {exc}") from None
    window = _window(since, until)
    if not path.exists():
        raise MpsandboxError(
            f"no database at {path}: start the sandbox (mpsandbox serve) or give --db"
        )
    now = time.time()
    try:
        with StoreReader(path) as reader:
            results = compute_stored(reader, chosen, by=group_by, window=window, now=now)
    except StoreError as exc:
        raise MpsandboxError(str(exc)) from None
    if fmt == "json":
        doc = report_dict(
            results,
            definitions.errors,
            db=str(path),
            computed_at=now,
            since=since,
            until=until,
            by=None if group_by is None else [f.path for f in group_by],
            sources=definitions.sources,
        )
        click.echo(jsonio.pretty(doc))
    else:
        click.echo(format_text(results), nl=False)
        for error in definitions.errors:
            click.echo(f"mpsandbox: metric definition {error}", err=True)
    failed = bool(definitions.errors) or any(r.error for r in results)
    sys.exit(1 if failed else 0)
