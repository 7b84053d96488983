"""`mpsandbox serve`: the intake headless, one line per stored event."""

from __future__ import annotations

import sys
from typing import Any

import click

from mpsandbox.cli.options import (
    build_settings,
    check_experiments,
    check_stream_config,
    server_options,
)
from mpsandbox.cli.runners import run_async
from mpsandbox.errors import MpsandboxError


@click.command()
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
    from mpsandbox.sandbox import Sandbox

    settings = build_settings(**opts)
    check_stream_config(settings)
    check_experiments(settings)
    sandbox = Sandbox(settings)
    # The store process opens (and migrates) the database while this process imports the
    # intake and its server: together rather than one after the other.
    sandbox.begin_start()
    from mpsandbox.intake.server import PortBusy, serve_forever

    jsonl = None if output in (None, "none") else output == "jsonl"
    try:
        code = run_async(
            serve_forever(settings, jsonl=jsonl, quiet=output == "none", sandbox=sandbox)
        )
    except PortBusy as exc:
        raise MpsandboxError(str(exc)) from None
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)
