"""Write schemas the way jsonschema-tools writes them, so a materialized file reads like its peers.

Reviewers diff a new `X.Y.Z.yaml` against the previous one, so the text matters, not only the
data. The published files follow two rules, learned from the files themselves:

* **Key order.** Every mapping (schemas, `properties` maps, examples alike) is sorted: first the
  keys `title, description, $id, $schema, type, additionalProperties, required, properties,
  allOf, examples` in that order, then every other key alphabetically, ignoring case (so a
  property named `title` leads its `properties` map, and `minimum` precedes `minLength`).
* **Scalar style** (js-yaml 3's): plain where safe; single quotes when a plain scalar would
  be read back as another type or holds one of ``,[]{}:#``; a literal block (``|``) for text
  with line breaks; a folded block (``>``) once a line would pass the width (80 columns less
  the indentation, at least 40), folded at the last space that fits.

Schemas hold only mappings, lists, strings, numbers, booleans and nulls, so a small emitter
written for that shape gives byte-identical output where PyYAML's emitter (which folds and
falls back to quoting by rules of its own) would not. Every document it writes is checked by
loading it back.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

__all__ = ["dump_json", "dump_yaml", "schema_key", "sorted_schema"]

#: The keys jsonschema-tools puts first, in its order.
LEADING_KEYS = (
    "title",
    "description",
    "$id",
    "$schema",
    "type",
    "additionalProperties",
    "required",
    "properties",
    "allOf",
    "examples",
)
_LEADING_RANK = {k: i for i, k in enumerate(LEADING_KEYS)}

# An approximation of the Unicode collation JavaScript's localeCompare uses: spaces and
# punctuation sort before symbols, symbols before digits, digits before letters, and letters
# compare without case first (lower case wins a tie).
_COLLATION = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789"
_COLLATION_RANK = {c: i for i, c in enumerate(_COLLATION)}
_LETTERS_AT = len(_COLLATION)


def _collation_key(text: str) -> tuple:
    primary = []
    for ch in text:
        low = ch.lower()
        if low in _COLLATION_RANK:
            primary.append(_COLLATION_RANK[low])
        elif "a" <= low <= "z":
            primary.append(_LETTERS_AT + ord(low) - ord("a"))
        else:
            primary.append(_LETTERS_AT + 26 + ord(low))
    tertiary = tuple(ch.isupper() for ch in text)
    return (tuple(primary), tertiary)


def schema_key(key: Any) -> tuple:
    """Sort key of a mapping key in jsonschema-tools' output order."""
    text = str(key)
    rank = _LEADING_RANK.get(text)
    if rank is not None:
        return (0, rank, ())
    return (1, 0, _collation_key(text))


def sorted_schema(node: Any) -> Any:
    """A copy with every mapping's keys in output order (lists keep theirs)."""
    if isinstance(node, dict):
        return {k: sorted_schema(node[k]) for k in sorted(node, key=schema_key)}
    if isinstance(node, list):
        return [sorted_schema(v) for v in node]
    return node


# --- scalars --------------------------------------------------------------------------------

_PLAIN_FIRST_FORBIDDEN = set("-?:,[]{}#&*!|>'\"%@`")
_PLAIN_FORBIDDEN = set(",[]{}:#")
_LINE_WIDTH = 80
_MIN_WIDTH = 40


def _printable_char(ch: str) -> bool:
    """YAML's printable set as js-yaml reads it (no tab, no NBSP, no line separators)."""
    c = ord(ch)
    return (
        0x20 <= c <= 0x7E
        or (0xA1 <= c <= 0xD7FF and c not in (0x2028, 0x2029))
        or (0xE000 <= c <= 0xFFFD and c != 0xFEFF)
        or 0x10000 <= c <= 0x10FFFF
    )


def _printable(text: str) -> bool:
    return all(ch == "\n" or _printable_char(ch) for ch in text)


def _reads_back_as_other_type(text: str) -> bool:
    """True when YAML would load the plain scalar as something other than this string."""
    try:
        return yaml.load(text, Loader=_LOADER) != text
    except yaml.YAMLError:
        return True


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _is_plain_safe(text: str) -> bool:
    return (
        not text[0].isspace()
        and text[0] not in _PLAIN_FIRST_FORBIDDEN
        and not text[-1].isspace()
        and not any(ch in _PLAIN_FORBIDDEN for ch in text)
        and not _reads_back_as_other_type(text)
    )


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_ESCAPES = {
    0x00: "\\0",
    0x07: "\\a",
    0x08: "\\b",
    0x09: "\\t",
    0x0A: "\\n",
    0x0B: "\\v",
    0x0C: "\\f",
    0x0D: "\\r",
    0x1B: "\\e",
    0x22: '\\"',
    0x5C: "\\\\",
    0x85: "\\N",
    0xA0: "\\_",
    0x2028: "\\L",
    0x2029: "\\P",
}


def _double_quoted(text: str) -> str:
    """YAML's double-quoted form, escaping what is not printable with YAML's escapes."""
    out = []
    for ch in text:
        c = ord(ch)
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif _printable_char(ch):
            out.append(ch)
        elif c <= 0xFF:
            out.append(f"\\x{c:02X}")
        elif c <= 0xFFFF:
            out.append(f"\\u{c:04X}")
        else:
            out.append(f"\\U{c:08X}")
    return '"' + "".join(out) + '"'


def _inline_scalar(value: Any) -> str:
    """A scalar that fits on its key's line (keys and short values)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    text = str(value)
    if not text:
        return "''"
    if not _printable(text) or "\n" in text:
        return _double_quoted(text)
    return text if _is_plain_safe(text) else _single_quoted(text)


def _number(value: float) -> str:
    """JavaScript's spelling of a number: `1` for 1.0, `.inf` and `.nan` for YAML."""
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", text)


def _fold_line(line: str, width: int) -> str:
    """Break one line at spaces so that no piece passes `width` where a break is possible.

    A break replaces a single space followed by a non-space; a line that starts with a
    space ("more indented") is kept whole, since folding would not read back the same.
    """
    if not line or line[0] == " ":
        return line
    pieces = []
    start = 0
    last_break = 0
    for match in re.finditer(r" (?=[^ ])", line):
        at = match.start()
        if at - start > width:
            end = last_break if last_break > start else at
            pieces.append(line[start:end])
            start = end + 1
        last_break = at
    if len(line) - start > width and last_break > start:
        pieces.append(line[start:last_break])
        start = last_break + 1
    pieces.append(line[start:])
    return "\n".join(pieces)


def _fold(text: str, width: int) -> str:
    """The body of a folded block scalar that reads back as `text`.

    In a folded scalar one line break between two ordinary lines reads as a space, so each
    real break between ordinary lines is written as an empty line.
    """
    first_break = text.find("\n")
    if first_break == -1:
        first_break = len(text)
    out = [_fold_line(text[:first_break], width)]
    previous_indented = text[:1] in ("\n", " ")
    for match in re.finditer(r"(\n+)([^\n]*)", text[first_break:]):
        breaks, line = match.group(1), match.group(2)
        indented = line[:1] == " "
        extra = "\n" if not previous_indented and not indented and line else ""
        out.append(breaks + extra + _fold_line(line, width))
        previous_indented = indented
    return "".join(out)


def _block_header(text: str) -> str:
    indicator = "2" if text[:1] in ("\n", " ") else ""
    if not text.endswith("\n"):
        chomp = "-"
    elif text == "\n" or text.endswith("\n\n"):
        chomp = "+"
    else:
        chomp = ""
    return indicator + chomp


def _indent_block(body: str, indent: int) -> str:
    pad = " " * indent
    lines = body.split("\n")
    if body.endswith("\n"):
        lines = lines[:-1]
    return "\n".join(pad + line if line else "" for line in lines)


def _scalar_value(value: Any, indent: int) -> str:
    """A value after `key:` or `- `: inline, or a block scalar whose body is at `indent`."""
    if not isinstance(value, str) or not value:
        return " " + _inline_scalar(value)
    if not _printable(value):
        return " " + _double_quoted(value)
    width = max(_MIN_WIDTH, _LINE_WIDTH - indent)
    foldable = any(len(line) > width and line[:1] != " " for line in value.split("\n"))
    if "\n" not in value and not foldable:
        return " " + (value if _is_plain_safe(value) else _single_quoted(value))
    if foldable:
        return f" >{_block_header(value)}\n" + _indent_block(_fold(value, width), indent)
    return f" |{_block_header(value)}\n" + _indent_block(value, indent)


# --- documents ------------------------------------------------------------------------------


def _emit(node: Any, indent: int, out: list[str], *, first_prefix: str | None = None) -> None:
    """Append the lines of a non-empty mapping or list at `indent`.

    `first_prefix` replaces the indentation of the first line (a list item's "- ").
    """
    pad = " " * indent
    items = node.items() if isinstance(node, dict) else ((None, v) for v in node)
    for i, (key, value) in enumerate(items):
        lead = first_prefix if (i == 0 and first_prefix is not None) else pad
        head = lead + (_inline_scalar(key) + ":" if isinstance(node, dict) else "-")
        if isinstance(value, dict | list) and value:
            if isinstance(node, dict):
                out.append(head)
                _emit(value, indent + 2, out)
            else:
                _emit(value, indent + 2, out, first_prefix=head + " ")
        elif isinstance(value, dict | list):
            out.append(head + (" {}" if isinstance(value, dict) else " []"))
        else:
            out.append(head + _scalar_value(value, indent + 2))


def dump_yaml(schema: Any) -> str:
    """The schema as jsonschema-tools writes its `X.Y.Z.yaml` (checked by reading it back)."""
    ordered = sorted_schema(schema)
    if not isinstance(ordered, dict | list) or not ordered:
        text = _inline_scalar(ordered) if not isinstance(ordered, dict | list) else str(ordered)
        return text + "\n"
    lines: list[str] = []
    _emit(ordered, 0, lines)
    text = "\n".join(lines) + "\n"
    if yaml.load(text, Loader=_LOADER) != ordered:  # pragma: no cover - a bug here
        raise AssertionError("YAML output does not read back as the schema")
    return text


def dump_json(schema: Any) -> str:
    """The schema as jsonschema-tools writes its `X.Y.Z.json` (two-space indent)."""
    return json.dumps(sorted_schema(schema), indent=2, ensure_ascii=False) + "\n"
