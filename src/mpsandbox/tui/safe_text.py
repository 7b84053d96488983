"""Turn event content into Rich Text that shows exactly what was sent and nothing more.

Event fields are data from any client. Building `Text` objects (never markup strings) keeps
`[bold red]` literal; on top of that, control characters (ANSI escapes, carriage returns,
bells) and Unicode bidi overrides are shown as visible escapes, because passed through they
could move the cursor, recolour the terminal or visually reorder a line into a lie.
"""

from __future__ import annotations

import re

from rich.text import Text

#: C0 and C1 controls, DEL, the bidi embedding/override/isolate marks, and lone UTF-16
#: surrogates (JSON.parse accepts "\\ud83d" alone; no terminal can show it as a character).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c\ud800-\udfff]"
)

ELLIPSIS = "…"


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\u{ord(ch):04x}")


def clean(value: object, limit: int | None = None) -> str:
    """A single-line, terminal-safe rendition of ``value``, cut to ``limit`` characters."""
    text = "" if value is None else str(value)
    if limit is not None and len(text) > limit * 4:
        text = text[: limit * 4]  # escaping can only lengthen; no need to scan megabytes
    text = _UNSAFE.sub(_escape, text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + ELLIPSIS
    return text


def safe(value: object, style: str = "", limit: int | None = None, *, wrap: bool = False) -> Text:
    """``clean`` as a Text; markup in ``value`` stays literal. Single-line unless ``wrap``."""
    return Text(clean(value, limit), style=style, no_wrap=not wrap, end="")
