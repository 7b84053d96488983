"""`mpsandbox validate`: judge events from a file through the same pipeline, with no server.

The text output says what the TUI's event detail says (the field, what was expected, what was
there, the findings, the real cause of a schema failure), so a person reading a CI log learns
as much as one looking at the screen.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import click

from mpsandbox.cli.options import build_settings, check_stream_config, schema_options
from mpsandbox.errors import MpsandboxError
from mpsandbox.platform.findings import render_all as render_findings
from mpsandbox.wording import plural


class ReadError(MpsandboxError):
    """Events that cannot be read from the file given."""


@dataclass
class Read:
    """What a source held: the events, and the lines that could not be read (reported, the
    other events still judged)."""

    events: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_events(source: str) -> Read:
    """One event, an array, or JSON lines; a clear error for anything else."""
    from mpsandbox import jsonio

    try:
        data = sys.stdin.buffer.read() if source == "-" else open(source, "rb").read()  # noqa: SIM115
    except OSError as exc:
        raise ReadError(f"cannot read {source}: {exc.strerror}") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        raise ReadError(f"{source} is empty")
    try:
        value = jsonio.loads(data)
        return Read(value if isinstance(value, list) else [value])
    except ValueError:
        pass
    read = Read()
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            read.events.append(jsonio.loads(line))
        except ValueError as exc:
            read.problems.append(f"{source}:{n}: not JSON ({exc})")
    if not read.events:
        raise ReadError(read.problems[0] if read.problems else f"{source} holds no event")
    return read


def _field(path: tuple) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or "(root)"


def _text_lines(record: Any) -> list[str]:
    """The lines under one event's head line, as the TUI's detail words them."""
    from mpsandbox.explain import detail
    from mpsandbox.records import INVALID

    lines = []
    if record.verdict == INVALID:
        accepted = record.accepted
        for error in record.errors:
            d = detail(accepted, error)
            lines.append(
                f"    {_field(d.field)}: {d.message}: expected {d.expected}, got {d.actual}  "
                f"[{d.keyword} at {d.rule}]"
            )
    elif record.message:
        lines.append(f"    {record.message}")
        reason = record.explanation.get("reason")
        if reason:
            lines.append(f"    why: {reason}")
        lines += [f"    hint: {hint}" for hint in record.explanation.get("hints", [])]
    for finding in render_findings(record.findings):
        lines.append(f"    {finding['severity']}: {finding['message']}  [{finding['kind']}]")
    return lines


def _json_line(record: Any) -> dict[str, Any]:
    return {
        "index": record.index,
        "verdict": record.verdict,
        "schema": record.schema_uri,
        "stream": record.stream,
        "errors": record.errors,
        "errorsText": record.errors_text,
        "message": record.message,
        "explanation": record.explanation,
        "findings": render_findings(record.findings),
    }


def run_validate(
    settings: Any, source: str, *, fmt: str, out: TextIO, working_copy: bool = False
) -> int:
    """``working_copy``: judge by each title's unmaterialized current.yaml where there is
    one (see working_copy.py), to test an edit before materializing it."""
    from mpsandbox import jsonio
    from mpsandbox.pipeline import Pipeline, RequestContext
    from mpsandbox.records import VALID
    from mpsandbox.sandbox import build_registry

    read = read_events(source)
    for problem in read.problems:
        click.echo(f"mpsandbox: {problem}; the other lines are judged", err=True)
    stream_configs = None
    if settings.stream_config:
        from mpsandbox.platform.stream_configs import load_location

        stream_configs = load_location(settings.stream_config)
    registry: Any = build_registry(settings)
    if working_copy:
        from mpsandbox.working_copy import WorkingCopyRegistry

        registry = WorkingCopyRegistry(registry)
    pipeline = Pipeline(registry, fill_ins=settings.fill_ins, stream_configs=stream_configs)
    records = pipeline.judge_batch(read.events, RequestContext(headers={}))
    bad = sum(1 for r in records if r.verdict != VALID)
    for r in records:
        if fmt == "json":
            out.write(jsonio.dumps_str(_json_line(r)) + "\n")
            continue
        out.write(f"#{r.index} {r.verdict.upper():7} {r.stream or '-'} {r.schema_uri or '-'}\n")
        out.writelines(line + "\n" for line in _text_lines(r))
    if fmt == "text":
        unread = f", {plural(len(read.problems), 'line')} unreadable" if read.problems else ""
        out.write(
            f"{plural(len(records), 'event')}: {len(records) - bad:,} valid, {bad:,} not{unread}\n"
        )
    return 1 if bad or read.problems else 0


@click.command()
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

    SOURCE holds one event, a JSON array of events, or JSON lines (a line that is not JSON is
    reported and the others are still judged). Exits 1 if any event is invalid or errored or
    a line could not be read, 2 if SOURCE cannot be read at all.
    """
    settings = build_settings(**opts)
    check_stream_config(settings)
    sys.exit(run_validate(settings, source, fmt=fmt, out=sys.stdout, working_copy=working_copy))
