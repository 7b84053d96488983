"""Shown when the intake could not bind: says why and offers another port in place.

The port field takes the focus when the banner appears (digits go to it, not to the screen
keys; Esc leaves it), and the screen's table gets it back once the intake listens."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from mpsandbox.tui.safe_text import clean


class PortBanner(Vertical):
    DEFAULT_CSS = """
    PortBanner { height: auto; display: none; background: $error 25%; border: tall $error;
                 padding: 0 1; }
    PortBanner.-shown { display: block; }
    PortBanner Horizontal { height: auto; }
    PortBanner .label { width: auto; padding: 1 1 0 0; }
    PortBanner Input { width: 16; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="port-problem", markup=False)
        with Horizontal():
            yield Static("Listen on port: ", classes="label")
            yield Input(type="integer", id="port-input", max_length=5)
            yield Button("Listen", id="port-listen", variant="primary")

    def on_mount(self) -> None:
        self.watch(self.app, "status", self._show, init=True)

    def _show(self, status) -> None:
        shown = bool(status.port_problem) and not status.listening
        was_shown = self.has_class("-shown")
        self.set_class(shown, "-shown")
        if shown:
            self.query_one("#port-problem", Static).update(clean(status.port_problem))
            if not was_shown:
                field = self.query_one(Input)
                field.value = str((status.port or 8192) + 1)
                field.focus()  # the one thing to do now: type another port
        elif was_shown and self.has_focus_within:
            # Listening again: the focus goes back where Esc would take it, the table.
            from mpsandbox.tui.screens.keys import KeyedScreen

            if isinstance(self.screen, KeyedScreen):
                self.screen.focus_home()

    def _listen(self) -> None:
        text = self.query_one(Input).value.strip()
        if not text.isdigit() or not 0 < int(text) < 65536:
            self.app.notify(f"{text!r} is not a port number (1-65535).", severity="error")
            return
        self.app.listen_on(int(text))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._listen()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._listen()
