"""Pretty-print an event as highlighted, terminal-safe text with notes beside its fields.

The detail screen needs each error on the line of the field it concerns, and a field the
schema requires but the event lacks shown where it would be; a generic JSON highlighter
cannot place notes, so this small printer walks the document itself.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from mpsandbox import jsonio
from mpsandbox.tui.safe_text import clean

Path = tuple[str | int, ...]
Notes = dict[Path, list[Text]]

#: Long strings are cut on screen (the copy actions always copy everything).
STRING_LIMIT = 400
#: Items shown per array or object before "… N more".
ITEM_LIMIT = 200
#: Deeper than this, a value is shown as one cut line of JSON (events may nest ~1,000 deep).
DEPTH_LIMIT = 48

KEY = "bold #79c0ff"
STRING = "#a5d6ff"
NUMBER = "#ffa657"
LITERAL = "#ff7b72"
PUNCT = "#8b949e"


def _scalar(value: Any) -> Text:
    if isinstance(value, str):
        shown = clean(value, STRING_LIMIT)
        text = Text(jsonio.dumps_str(shown) if shown == value else f'"{shown}"', style=STRING)
        if len(value) > STRING_LIMIT:
            text.append(f" ({len(value):,} characters)", style="dim")
        return text
    if isinstance(value, bool) or value is None:
        return Text(jsonio.dumps_str(value), style=LITERAL)
    return Text(clean(jsonio.dumps_str(value)), style=NUMBER)


def render_json(doc: Any, notes: Notes | None = None) -> Text:
    notes = notes or {}
    out = Text(no_wrap=False, end="")
    _render(out, doc, (), 0, None, notes, last=True)
    for path in sorted(notes, key=len):
        if path == () and notes[path]:
            for note in notes[path]:
                out.append("\n")
                out.append_text(note)
    return out


def _line_start(out: Text, depth: int, key: str | int | None) -> None:
    if out.plain:
        out.append("\n")
    out.append("  " * depth)
    if isinstance(key, str):
        out.append(jsonio.dumps_str(clean(key, 200)), style=KEY)
        out.append(": ", style=PUNCT)


def _notes_for(out: Text, notes: Notes, path: Path) -> None:
    for note in notes.get(path, ()):
        out.append("  ")
        out.append_text(note)


def _render(
    out: Text,
    value: Any,
    path: Path,
    depth: int,
    key: str | int | None,
    notes: Notes,
    last: bool,
) -> None:
    comma = "" if last else ","
    _line_start(out, depth, key)
    if depth >= DEPTH_LIMIT and isinstance(value, dict | list):
        try:
            compact = jsonio.dumps_str(value)
        except RecursionError:
            compact = "… (nested too deeply to show; copy the event to see it)"
        out.append(clean(compact, STRING_LIMIT) + comma, style="dim")
        return
    if isinstance(value, dict):
        if not value:
            out.append("{}" + comma, style=PUNCT)
            _notes_for(out, notes, path)
            return
        out.append("{", style=PUNCT)
        if path:
            _notes_for(out, notes, path)
        items = list(value.items())
        shown = items[:ITEM_LIMIT]
        missing = [
            p[-1]
            for p in notes
            if len(p) == len(path) + 1 and p[:-1] == path and p[-1] not in value
        ]
        for i, (k, v) in enumerate(shown):
            is_last = i == len(shown) - 1 and len(items) <= ITEM_LIMIT and not missing
            _render(out, v, (*path, k), depth + 1, k, notes, is_last)
        if len(items) > ITEM_LIMIT:
            _line_start(out, depth + 1, None)
            out.append(f"… {len(items) - ITEM_LIMIT:,} more properties", style="dim")
        for k in missing:
            _line_start(out, depth + 1, k if isinstance(k, str) else None)
            out.append("(absent)", style="dim italic")
            _notes_for(out, notes, (*path, k))
        _line_start(out, depth, None)
        out.append("}" + comma, style=PUNCT)
        return
    if isinstance(value, list):
        if not value:
            out.append("[]" + comma, style=PUNCT)
            _notes_for(out, notes, path)
            return
        out.append("[", style=PUNCT)
        _notes_for(out, notes, path)
        shown = value[:ITEM_LIMIT]
        for i, v in enumerate(shown):
            is_last = i == len(shown) - 1 and len(value) <= ITEM_LIMIT
            _render(out, v, (*path, i), depth + 1, None, notes, is_last)
        if len(value) > ITEM_LIMIT:
            _line_start(out, depth + 1, None)
            out.append(f"… {len(value) - ITEM_LIMIT:,} more items", style="dim")
        _line_start(out, depth, None)
        out.append("]" + comma, style=PUNCT)
        return
    out.append_text(_scalar(value))
    out.append(comma, style=PUNCT)
    _notes_for(out, notes, path)
