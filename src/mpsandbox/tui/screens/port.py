"""Choose the port the intake listens on (when the default is taken, or any time)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class PortScreen(ModalScreen[int | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, suggestion: int) -> None:
        super().__init__()
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(id="port-box", classes="dialog"):
            yield Static("Listen on which port? (Enter to start, Esc to cancel)")
            yield Input(str(self.suggestion), type="integer", max_length=5, id="port-choice")
            yield Static("", id="port-choice-problem", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text.isdigit() and 0 < int(text) < 65536:
            self.dismiss(int(text))
        else:
            self.query_one("#port-choice-problem", Static).update(
                f"{text!r} is not a port number (1-65535)."
            )

    def action_cancel(self) -> None:
        self.dismiss(None)
