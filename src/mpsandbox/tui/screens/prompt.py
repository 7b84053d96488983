"""Ask for one line of text (a flag, a rate, a chaos spec): Enter answers, Esc cancels.

With ``validate``, an answer it refuses keeps the dialog open with the reason under the
input, so the user fixes it in place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


def term_guide(
    sections: Sequence[tuple[str | None, Sequence[tuple[str, str]]]], note: str = ""
) -> RenderableType:
    """Terms and their meanings in two columns, a meaning too long for the dialog wrapping
    within its own column (not under the terms); each section under an optional heading."""
    parts: list[RenderableType] = []
    for heading, rows in sections:
        if heading:
            parts.append(Text(heading, style="bold"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold cyan" if heading is None else "cyan", no_wrap=True)
        grid.add_column(ratio=1)
        for term, meaning in rows:
            grid.add_row(Text(term), Text(meaning))
        parts.append(grid)
    if note:
        parts.append(Text(note))
    return Group(*parts)


class PromptScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        question: str,
        placeholder: str = "",
        value: str = "",
        *,
        guide: RenderableType | None = None,
        validate: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder
        self.value = value
        self.guide = guide
        #: Returns why an answer is refused (shown in the dialog), or None to accept it.
        self.validate = validate

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box", classes="dialog wide" if self.guide else "dialog"):
            yield Static(self.question, markup=False)
            if self.guide:
                yield Static(self.guide, id="prompt-help", markup=False)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static("", id="prompt-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#prompt-error").display = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        problem = self.validate(event.value) if self.validate is not None else None
        error = self.query_one("#prompt-error", Static)
        if problem:
            error.update(Text(problem, style="bold red"))
            error.display = True
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
