"""`mpsandbox schema ...`: the schema authoring loop (materialize, lint, diff, new).

Thin on purpose: options in, a call into `mpsandbox.authoring`, lines out, an exit status.
The authoring modules are imported inside each command (they pull in the validators), so
`mpsandbox --help` and the other commands do not pay for them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mpsandbox.cli.options import remote_options
from mpsandbox.errors import MpsandboxError


def source_options(fn):
    """Where `$ref`s and `title@version` names are looked up, as `serve` looks up schemas.

    A schema's own repository is always searched first.
    """
    options = [
        click.option(
            "--schemas",
            "schema_dirs",
            multiple=True,
            type=click.Path(path_type=Path),
            help="A schema repository checkout or directory to resolve $refs and names in "
            "(repeatable; searched in order, after the schema's own repository).",
        ),
        remote_options,
        click.option(
            "--no-builtin-schemas",
            is_flag=True,
            help="Do not search mpsandbox's own schemas/ library.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def format_option(fn):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Lines for people, or one JSON document.",
    )(fn)


def _resolver(opts: dict[str, Any]):
    from mpsandbox.authoring.repo import Resolver
    from mpsandbox.cli.options import build_settings
    from mpsandbox.schemas.configured import schema_sources

    return Resolver(schema_sources(build_settings(**opts))), opts.get("schema_dirs") or ()


@click.group()
def schema() -> None:
    """Author schemas in repository layout (materialize, lint, diff, scaffold); fetch and
    list the remote schema cache.

    The loop jsonschema-tools runs for Wikimedia's schema repositories, locally and without
    Node: edit current.yaml, `materialize` it into X.Y.Z.yaml, `lint` before review, `diff`
    against the previous version, and send events to the sandbox with --schemas pointing at
    the checkout. `new` starts a schema from a base schema and fragments.
    """


@schema.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "json_too", is_flag=True, help="Also write X.Y.Z.json and latest.json.")
@click.option(
    "--version",
    "version",
    metavar="X.Y.Z",
    default=None,
    help="Materialize as this version and set $id in current.yaml to it (a version bump); "
    "only for a single schema.",
)
@source_options
def materialize(target: Path, json_too: bool, version: str | None, **opts: Any) -> None:
    """Write X.Y.Z.yaml from current.yaml, with the X.Y.Z, latest and latest.yaml links.

    TARGET is a schema directory (or its current.yaml), or a repository or subtree: then
    every current.yaml under it, fragments before the schemas that use them. $refs are
    dereferenced (across the --schemas repositories), allOf merged, numbers bounded, $id set
    from the title and version, and examples kept or generated, as jsonschema-tools does.
    An existing X.Y.Z.yaml is never overwritten with different content: that is a
    current.yaml changed without a version bump (exit 1).
    """
    from mpsandbox.authoring.materialize import AuthoringError, materialize_all
    from mpsandbox.authoring.repo import find_current_files

    resolver, _ = _resolver(opts)
    currents = find_current_files(target)
    if not currents:
        raise MpsandboxError(f"no current.yaml in or under {target}")
    try:
        outcomes = materialize_all(currents, resolver, json_too=json_too, version=version)
    except AuthoringError as exc:
        raise MpsandboxError(str(exc)) from None
    for outcome in outcomes:
        if outcome.failed:
            click.echo(f"mpsandbox: {outcome.message}", err=True)
        elif outcome.status == "written" or len(outcomes) == 1:
            click.echo(outcome.message)
    written = sum(o.status == "written" for o in outcomes)
    failed = sum(o.failed for o in outcomes)
    if len(outcomes) > 1:
        unchanged = len(outcomes) - written - failed
        click.echo(f"{written} written, {unchanged} unchanged, {failed} failed")
    sys.exit(1 if failed else 0)


@schema.command()
@click.argument("targets", nargs=-1, type=click.Path(path_type=Path))
@format_option
@source_options
def lint(targets: tuple[Path, ...], fmt: str, **opts: Any) -> None:
    """Check schema files for what CI, production or review would reject.

    TARGETS are files, schema directories or repositories (default: the --schemas
    directories, else the current directory). Checks: the draft-07 meta-schema; production's
    load rules (AJV's secure schemas: "production would refuse this schema"); title and $id
    against the path; a current.yaml changed without a version bump; examples against the
    schema; jsonschema-tools' robustness rules (snake_case names, required fields exist,
    numeric bounds, deterministic types), honouring skipSchemaTestCases. One line per
    problem, `path: [rule] message`; exit 1 on any error (warnings do not fail).
    """
    from mpsandbox import jsonio
    from mpsandbox.authoring.lint import lint_paths

    resolver, schema_dirs = _resolver(opts)
    paths = list(targets) or [Path(d) for d in schema_dirs] or [Path(".")]
    report = lint_paths(paths, resolver)
    base = Path.cwd()
    if fmt == "json":
        click.echo(jsonio.pretty(report.as_dict(base)))
    else:
        for problem in report.problems:
            click.echo(problem.line(base))
        click.echo(report.summary())
    sys.exit(1 if report.errors else 0)


@schema.command()
@click.argument("a")
@click.argument("b")
@format_option
@source_options
def diff(a: str, b: str, fmt: str, **opts: Any) -> None:
    """Field-level differences from schema A to schema B, each breaking, compatible or doc.

    A and B are schema files (a current.yaml is materialized first), `title@X.Y.Z` names
    or $id URIs (/title/X.Y.Z), looked up in the --schemas sources. Fields are dotted
    paths (meta.stream; array items as [], map values as {}). Exit status: 0 when nothing
    breaks, 1 when a change is breaking, 2 when a schema cannot be found.
    """
    from mpsandbox import jsonio
    from mpsandbox.authoring.diff import BREAKING, diff_schemas, load_side
    from mpsandbox.authoring.materialize import AuthoringError

    resolver, _ = _resolver(opts)
    try:
        a_label, a_schema = load_side(a, resolver)
        b_label, b_schema = load_side(b, resolver)
    except AuthoringError as exc:
        raise MpsandboxError(str(exc)) from None
    result = diff_schemas(a_schema, b_schema, a_label=a_label, b_label=b_label)
    if fmt == "json":
        click.echo(jsonio.pretty(result.as_dict()))
    else:
        width = max((len(c.path) for c in result.changes), default=0)
        for change in result.changes:
            label = change.severity.upper() if change.severity == BREAKING else change.severity
            click.echo(f"{label:<10}  {change.path:<{width}}  {change.message}")
        click.echo(result.summary())
    sys.exit(1 if result.breaking else 0)


@schema.command("new")
@click.argument("name")
@click.option(
    "--from",
    "base",
    metavar="TITLE[@X.Y.Z]",
    default=None,
    help="The base schema to build on, e.g. analytics/product_metrics/web/base "
    "(newest version found unless @X.Y.Z is given).",
)
@click.option(
    "--fragment",
    "fragments",
    multiple=True,
    metavar="TITLE[@X.Y.Z]",
    help="A fragment to mix in, e.g. mpsandbox/experiment (the fragment/ prefix may be "
    "left out; repeatable).",
)
@click.option(
    "--into",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="The repository (or its jsonschema/ directory) to write into.",
)
@source_options
def new(name: str, base: str | None, fragments: tuple[str, ...], into: Path, **opts: Any) -> None:
    """Start schema NAME: jsonschema/NAME/current.yaml built on --from and --fragment.

    Writes title, $id /NAME/1.0.0, an allOf of $refs to the newest versions found, an empty
    properties block with a commented example field, and one minimal example. Then run
    `mpsandbox schema materialize` and `mpsandbox schema lint` on its directory.
    """
    from mpsandbox.authoring.materialize import AuthoringError
    from mpsandbox.authoring.scaffold import scaffold

    resolver, _ = _resolver(opts)
    try:
        made = scaffold(name, into, resolver, base=base, fragments=list(fragments))
    except AuthoringError as exc:
        raise MpsandboxError(str(exc), 1) from None
    click.echo(f"wrote {made.path}")
    for ref in made.refs:
        click.echo(f"  allOf $ref {ref}")
    folder = made.path.parent
    sources = "".join(f" --schemas {d}" for d in opts.get("schema_dirs") or ())
    click.echo(f"next: add fields, then `mpsandbox schema materialize {folder}{sources}`")
    click.echo(f"      and `mpsandbox schema lint {folder}{sources}`")


# --- the remote schema cache ------------------------------------------------------------


def _remote_settings(opts: dict[str, Any]):
    from mpsandbox.cli.options import build_settings

    return build_settings(**opts)


@schema.command("fetch")
@click.argument("names", nargs=-1, required=True, metavar="TITLE[/VERSION]...")
@remote_options
def fetch(names: tuple[str, ...], **opts: Any) -> None:
    """Fill the schema cache ahead of an offline trip: each TITLE[/VERSION] (latest when no
    version) from the remote repositories, with every $ref it uses (fragments).

    Afterwards, serve, validate and the rest judge these events with no network, as with
    --offline. Exits 1 if any could not be fetched.
    """
    from mpsandbox.authoring.repo import Resolver
    from mpsandbox.schemas.configured import schema_sources
    from mpsandbox.schemas.refs import RefError, inline_refs
    from mpsandbox.schemas.remote import RemoteSource, cached_urls
    from mpsandbox.schemas.sources import VERSION_RE, SchemaParseError

    settings = _remote_settings(opts)
    if settings.offline:
        raise MpsandboxError(
            "remote schemas are off (--offline or MPSANDBOX_OFFLINE): nothing to fetch from"
        )
    remotes = [s for s in schema_sources(settings) if isinstance(s, RemoteSource)]
    if not remotes:
        raise MpsandboxError("no remote schema repository (MPSANDBOX_REMOTE_SCHEMAS is empty)")
    resolver = Resolver(remotes)
    failed = 0
    for name in names:
        path = name.strip().strip("/")
        last = path.rsplit("/", 1)[-1]
        uri = "/" + (path if VERSION_RE.match(last) or last == "latest" else path + "/latest")
        before = {url for url, _ in cached_urls(settings.cache_dir)}
        try:
            inline_refs(resolver.load(uri), resolver.load)
        except (RefError, SchemaParseError) as exc:
            failed += 1
            click.echo(f"{uri}: not fetched: {exc}", err=True)
            continue
        found = resolver.find(uri)
        new = len({url for url, _ in cached_urls(settings.cache_dir)} - before)
        where = found.location if found is not None else "?"
        click.echo(f"{uri}: cached from {where} ({new} new documents, $refs included)")
    click.echo(f"cache: {settings.cache_dir}")
    sys.exit(1 if failed else 0)


@schema.command("cache")
@click.option("--clear", is_flag=True, help="Remove every cached schema.")
def cache(clear: bool) -> None:
    """List the schemas fetched from remote repositories and kept on disk (the cache used
    offline), or remove them all with --clear. Location: MPSANDBOX_CACHE, else the user
    cache folder."""
    from mpsandbox.schemas.remote import cached_urls, clear_cache

    settings = _remote_settings({})
    if clear:
        n = clear_cache(settings.cache_dir)
        click.echo(f"removed {n} cached schemas from {settings.cache_dir}")
        return
    entries = cached_urls(settings.cache_dir)
    for url, body in entries:
        try:
            size = body.stat().st_size
        except OSError:
            continue
        click.echo(f"{size:>9,}  {url}")
    click.echo(f"{len(entries)} cached schemas in {settings.cache_dir}")
