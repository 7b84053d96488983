"""The command line: the root group, and every command registered here, explicitly.

Each command family lives in its own module and never imports this one (as Datasette's
``cli.py`` registers ``publish`` commands), so ``python -m mpsandbox``, ``python -m
mpsandbox.cli`` and the installed ``mpsandbox`` always list the same commands. Errors meant for
the user (:class:`~mpsandbox.errors.MpsandboxError`) become one ``mpsandbox: ...`` line and
their exit status here, in :class:`MpsandboxGroup`, and nowhere else.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from mpsandbox import __version__
from mpsandbox.cli import (
    chaos,
    fixtures,
    instruments,
    metrics,
    overrides,
    schema,
    serve,
    simulate,
    validate,
)
from mpsandbox.cli.options import (
    build_settings,
    check_experiments,
    check_stream_config,
    metrics_dir_option,
    server_options,
)
from mpsandbox.cli.runners import run_tui
from mpsandbox.errors import MpsandboxError


class UserError(click.ClickException):
    """An :class:`MpsandboxError` as click shows it: ``mpsandbox: message`` on stderr."""

    def __init__(self, error: MpsandboxError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"mpsandbox: {self.format_message()}", err=True, file=file)


class MpsandboxGroup(click.Group):
    """The root group: turns every MpsandboxError raised by any command into a UserError."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MpsandboxError as exc:
            raise UserError(exc) from exc


@click.group(
    cls=MpsandboxGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="mpsandbox")
@server_options
@metrics_dir_option
@click.pass_context
def main(ctx: click.Context, **opts: Any) -> None:
    """mpsandbox: a local EventGate-compatible intake and event inspector.

    Without a command, opens the terminal UI with the intake running inside it on
    http://127.0.0.1:8192/v1/events; the options are those of `serve`. When there is no
    terminal (a pipe, CI), runs `serve` instead.
    """
    if ctx.invoked_subcommand is not None:
        given = [k for k, v in opts.items() if v not in (None, (), False) and k != "fill_ins"]
        if given or opts.get("fill_ins") is False:
            raise click.UsageError(
                f"put options after the command: mpsandbox {ctx.invoked_subcommand} --..."
            )
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo("mpsandbox: no terminal, so running headless (mpsandbox serve).", err=True)
        opts.pop("metrics_dirs", None)  # the Metrics screen's; serve has none
        ctx.invoke(serve.serve, **opts)
        return
    settings = build_settings(**opts)
    check_stream_config(settings)
    check_experiments(settings)
    sys.exit(run_tui(settings))


#: Every command, in the order --help lists them (click sorts them by name).
COMMANDS: tuple[click.Command, ...] = (
    serve.serve,
    validate.validate,
    overrides.override,
    chaos.chaos,
    fixtures.export_cmd,
    fixtures.import_cmd,
    fixtures.replay_cmd,
    fixtures.bundle_cmd,
    fixtures.open_cmd,
    schema.schema,
    metrics.metrics,
    instruments.check,
    instruments.instrument,
    simulate.simulate,
    simulate.demo,
)
for _command in COMMANDS:
    main.add_command(_command)

__all__ = ["COMMANDS", "MpsandboxGroup", "main"]
