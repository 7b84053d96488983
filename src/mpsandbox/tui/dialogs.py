"""The app's questions: the help, which port to listen on, whether to reset the store, which
chaos spec to apply. Each opens a modal screen and hands the answer to the part of the app
that acts on it (the intake's lifecycle, the chaos control).

A mixin of the app.
"""

from __future__ import annotations

from mpsandbox.chaos import EXAMPLES as CHAOS_EXAMPLES
from mpsandbox.chaos import SPEC_HELP as CHAOS_HELP
from mpsandbox.chaos import ChaosError, parse_spec
from mpsandbox.tui.screens.confirm import ConfirmScreen
from mpsandbox.tui.screens.help import HelpScreen


class Dialogs:
    """Mixin of :class:`~mpsandbox.tui.app.MpSandboxApp`."""

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.keymap, current=self.current_mode))

    def action_listen_elsewhere(self) -> None:
        from mpsandbox.tui.screens.port import PortScreen

        suggestion = (self.status.port or self.settings.port) + 1

        def chosen(port: int | None) -> None:
            if port is not None:
                self.listen_on(port)

        self.push_screen(PortScreen(suggestion), chosen)

    def action_reset_store(self) -> None:
        if not self.intake_running("The store can only be reset while the intake runs."):
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.reset_store()

        self.push_screen(
            ConfirmScreen("Delete every stored request and event?", "Reset the store"), confirmed
        )

    def action_set_chaos(self) -> None:
        """Ask for a chaos spec (the grammar and examples shown; errors in the dialog)."""
        from mpsandbox.tui.screens.prompt import PromptScreen, term_guide

        if self.chaos_refused():
            return
        guide = term_guide(
            [(None, CHAOS_HELP), ("e.g.", CHAOS_EXAMPLES[:-1])],
            "Only POSTs on intake paths are affected; 'off' turns chaos off.",
        )

        def problem(text: str) -> str | None:
            try:
                parse_spec(text)
            except ChaosError as exc:
                return str(exc)
            return None

        def answered(text: str | None) -> None:
            if text is not None:
                self.write_chaos(text)

        self.push_screen(
            PromptScreen(
                "Chaos: answer a share of intake requests badly, to see how a client retries",
                "503:0.2,latency:200ms",
                self.status.chaos or "",
                guide=guide,
                validate=problem,
            ),
            answered,
        )
