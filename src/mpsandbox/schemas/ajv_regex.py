"""JavaScript regular expressions (ES2018, no ``u`` flag, Annex B) evaluated with Python's ``re``.

AJV 6 builds every ``pattern``, every ``patternProperties`` key and most "fast" formats with
``new RegExp(source)``. Python's dialect differs in ways that change verdicts on real input: its
``$`` also matches before a trailing newline, ``\\d``/``\\w``/``\\s``/``\\b`` are Unicode-aware,
unknown escapes such as ``\\a`` mean something else or are errors, ``{,5}`` is a quantifier, and
a regex without ``u`` sees a string as UTF-16 code units, so an emoji is *two* characters to
``.``. This module parses the JavaScript source itself and emits an equivalent Python pattern
that is always run against the UTF-16 code-unit form of the subject.

It also emits, when that is provably equivalent, a conservative ECMAScript pattern for
``jsonschema-rs`` (which sees code points, not code units): only atoms that can never match a
surrogate code unit qualify, because only those behave identically on astral characters.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["JsRegex", "JsRegexError", "compile_js_regex", "to_utf16_units"]

_MAX_UNIT = 0xFFFF
_SURROGATES = (0xD800, 0xDFFF)

# JavaScript's \s: WhiteSpace (incl. every Zs character and U+FEFF) plus LineTerminator.
_JS_SPACE = (
    (0x09, 0x0D),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
)
_JS_DIGIT = ((0x30, 0x39),)
_JS_WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_LINE_TERMINATORS = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))

_WORD = "[0-9A-Z_a-z]"
_WORD_BOUNDARY = f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))"
_NOT_WORD_BOUNDARY = f"(?:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))"


class JsRegexError(ValueError):
    """The source is not a valid JavaScript regular expression (``new RegExp`` would throw)."""


def to_utf16_units(s: str) -> str:
    """Return ``s`` with each astral character split into its two surrogate code units.

    JavaScript regexes without the ``u`` flag operate on UTF-16 code units; matching the
    split form with Python gives the same answers (lengths, ``.``, anchors, classes).
    """
    if s.isascii() or max(s) <= "\uffff":
        return s
    units = array("H")
    units.frombytes(s.encode("utf-16-le", "surrogatepass"))
    return "".join(map(chr, units))


def _normalize(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in _normalize(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX_UNIT:
        out.append((nxt, _MAX_UNIT))
    return out


def _surrogates_covered(ranges: list[tuple[int, int]]) -> str:
    """ "none", "all" or "some" of the surrogate code units are in the (normalized) set."""
    covered = sum(
        max(0, min(hi, _SURROGATES[1]) - max(lo, _SURROGATES[0]) + 1) for lo, hi in ranges
    )
    if covered == 0:
        return "none"
    return "all" if covered == _SURROGATES[1] - _SURROGATES[0] + 1 else "some"


def _esc(cp: int) -> str:
    """One code unit as a pattern atom that both Python and the Rust ECMAScript parser read."""
    ch = chr(cp)
    if ch.isascii() and ch.isalnum():
        return ch
    return f"\\u{cp:04x}"


def _class_text(ranges: list[tuple[int, int]]) -> str:
    parts = []
    for lo, hi in ranges:
        parts.append(_esc(lo) if lo == hi else f"{_esc(lo)}-{_esc(hi)}")
    return "[" + "".join(parts) + "]"


@dataclass
class _Out:
    """The two renderings being built side by side."""

    py: list[str] = field(default_factory=list)
    rs: list[str] = field(default_factory=list)
    rs_ok: bool = True
    #: Set by emit_set when the atom matches every surrogate (see _Parser.alternative).
    atom_spans_surrogates: bool = False

    def add(self, py: str, rs: str | None) -> None:
        self.py.append(py)
        if rs is None:
            self.rs_ok = False
        else:
            self.rs.append(rs)


class _Parser:
    def __init__(self, source: str, ignore_case: bool) -> None:
        self.source = source
        self.src = to_utf16_units(source)
        self.pos = 0
        self.ignore_case = ignore_case
        self.total_groups, self.names = self._prescan()
        self.opened = 0
        self.closed: set[int] = set()
        self.name_to_index: dict[str, int] = {}

    # -- helpers ---------------------------------------------------------------------------
    def error(self, msg: str) -> JsRegexError:
        return JsRegexError(f"Invalid regular expression: /{self.source}/: {msg}")

    def peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.src[i] if i < len(self.src) else ""

    def _prescan(self) -> tuple[int, list[str]]:
        """Count capturing groups and collect group names, as backreferences need them."""
        src, i, n, names, in_class = self.src, 0, 0, [], False
        while i < len(src):
            c = src[i]
            if c == "\\":
                i += 2
                continue
            if in_class:
                if c == "]":
                    in_class = False
            elif c == "[":
                in_class = True
            elif c == "(":
                if src.startswith("(?<", i) and i + 3 < len(src) and src[i + 3] not in "=!":
                    n += 1
                    end = src.find(">", i + 3)
                    if end != -1:
                        names.append(src[i + 3 : end])
                elif not src.startswith("(?", i):
                    n += 1
            i += 1
        return n, names

    # -- grammar ---------------------------------------------------------------------------
    def parse(self) -> _Out:
        out = self.disjunction()
        if self.pos < len(self.src):
            if self.peek() == ")":
                raise self.error("Unmatched ')'")
            raise self.error("Unexpected character")  # pragma: no cover - defensive
        return out

    def disjunction(self) -> _Out:
        out = self.alternative()
        while self.peek() == "|":
            self.pos += 1
            nxt = self.alternative()
            out.add("|", "|")
            out.py.extend(nxt.py)
            out.rs.extend(nxt.rs)
            out.rs_ok = out.rs_ok and nxt.rs_ok
        return out

    def alternative(self) -> _Out:
        """Parse terms up to "|" or ")".

        For the jsonschema-rs rendering, an atom that matches every surrogate code unit (".",
        "[^x]", "\\S", ...) is only equivalent when repeated by "*": JavaScript eats an astral
        character as two units where Rust eats it as one, and when JavaScript splits one across
        two such atoms, a minimum of zero lets Rust give it whole to either. A single such atom
        directly before such a repetition is equivalent too (the repetition takes the second
        unit). Anything else ("+", counts, lone atoms) can count astral characters differently,
        so those patterns run through the Python rendering instead."""
        out = _Out()
        tags = []
        while self.pos < len(self.src) and self.peek() not in "|)":
            tags.append(self.term(out))
        for i, tag in enumerate(tags):
            if tag == "spans-once" and (i + 1 == len(tags) or tags[i + 1] != "spans-repeated"):
                out.rs_ok = False
        return out

    def term(self, out: _Out) -> str:
        c = self.peek()
        start_py, start_rs = len(out.py), len(out.rs)
        quantifiable = True
        lookahead = False
        out.atom_spans_surrogates = False
        if c == "^":
            self.pos += 1
            out.add("^", "^")
            quantifiable = False
        elif c == "$":
            self.pos += 1
            out.add(r"\Z", "$")
            quantifiable = False
        elif c == "\\" and self.peek(1) in ("b", "B"):
            # Spelled out: Python's own \B never matches inside an empty string, JavaScript's does.
            out.add(_WORD_BOUNDARY if self.peek(1) == "b" else _NOT_WORD_BOUNDARY, None)
            self.pos += 2
            quantifiable = False
        elif c == "(":
            kind = self.group(out)
            quantifiable = kind in ("capture", "noncap", "ahead", "nahead")
            lookahead = kind in ("ahead", "nahead")
        elif c == ".":
            self.pos += 1
            self.emit_set(out, list(_LINE_TERMINATORS), negate=True)
        elif c == "[":
            self.char_class(out)
        elif c == "\\":
            self.atom_escape(out)
        elif c in "*+?":
            raise self.error("Nothing to repeat")
        elif c == "{":
            if self.braced_quantifier_ahead():
                raise self.error("Nothing to repeat")
            self.pos += 1
            self.emit_char(out, ord(c))
        else:
            self.pos += 1
            self.emit_char(out, ord(c))
        spans = out.atom_spans_surrogates
        q = self.quantifier(out, start_py, start_rs, quantifiable, lookahead)
        if not spans:
            return "plain"
        if q is None:
            return "spans-once"
        if q.rstrip("?") in ("*", "{0,}"):
            return "spans-repeated"
        out.rs_ok = False
        return "plain"

    def braced_quantifier_ahead(self) -> bool:
        return re.match(r"\{[0-9]+(?:,[0-9]*)?\}", self.src[self.pos :]) is not None

    def quantifier(
        self, out: _Out, start_py: int, start_rs: int, quantifiable: bool, lookahead: bool
    ) -> str | None:
        c = self.peek()
        q = None
        if c in ("*", "+", "?"):
            self.pos += 1
            q = c
        elif c == "{":
            m = re.match(r"\{([0-9]+)(,([0-9]*))?\}", self.src[self.pos :])
            if m:
                self.pos += m.end()
                lo = int(m.group(1))
                hi = m.group(3)
                if m.group(2) is None:
                    q = f"{{{lo}}}"
                elif hi == "":
                    q = f"{{{lo},}}"
                else:
                    if int(hi) < lo:
                        raise self.error("numbers out of order in {} quantifier")
                    q = f"{{{lo},{int(hi)}}}"
        if q is None:
            return None
        if not quantifiable:
            raise self.error("Nothing to repeat")
        if self.peek() == "?":
            self.pos += 1
            q += "?"
        if lookahead:
            out.rs_ok = False  # the Rust engine refuses a quantified lookahead
        # Wrap the atom so the quantifier binds to all of it in both dialects.
        atom_py = "".join(out.py[start_py:])
        del out.py[start_py:]
        out.py.append(f"(?:{atom_py}){q}")
        if out.rs_ok:
            atom_rs = "".join(out.rs[start_rs:])
            del out.rs[start_rs:]
            out.rs.append(f"(?:{atom_rs}){q}")
        if self.peek() in ("*", "+", "?") or (
            self.peek() == "{" and self.braced_quantifier_ahead()
        ):
            raise self.error("Nothing to repeat")
        return q

    def group(self, out: _Out) -> str:
        src = self.src
        self.pos += 1
        kind = "capture"
        name = None
        if src.startswith("?:", self.pos):
            kind, self.pos = "noncap", self.pos + 2
        elif src.startswith("?=", self.pos):
            kind, self.pos = "ahead", self.pos + 2
        elif src.startswith("?!", self.pos):
            kind, self.pos = "nahead", self.pos + 2
        elif src.startswith("?<=", self.pos):
            kind, self.pos = "behind", self.pos + 3
        elif src.startswith("?<!", self.pos):
            kind, self.pos = "nbehind", self.pos + 3
        elif src.startswith("?<", self.pos):
            m = re.match(r"\?<([A-Za-z_$][A-Za-z0-9_$]*)>", src[self.pos :])
            if not m:
                raise self.error("Invalid capture group name")
            name = m.group(1)
            if name in self.name_to_index:
                raise self.error("Duplicate capture group name")
            self.pos += m.end()
        elif src.startswith("?", self.pos):
            raise self.error("Invalid group")
        index = 0
        if kind == "capture":
            self.opened += 1
            index = self.opened
            if name is not None:
                self.name_to_index[name] = index
        inner = self.disjunction()
        if self.peek() != ")":
            raise self.error("Unterminated group")
        self.pos += 1
        body_py, body_rs = "".join(inner.py), "".join(inner.rs)
        rs_ok = inner.rs_ok
        if kind == "capture":
            self.closed.add(index)
            py, rs = f"(?P<g{index}>{body_py})", f"({body_rs})"
        elif kind == "noncap":
            py, rs = f"(?:{body_py})", f"(?:{body_rs})"
        elif kind == "ahead":
            py, rs = f"(?={body_py})", f"(?={body_rs})"
        elif kind == "nahead":
            py, rs = f"(?!{body_py})", f"(?!{body_rs})"
        elif kind == "behind":
            py, rs, rs_ok = f"(?<={body_py})", "", False
        else:
            py, rs, rs_ok = f"(?<!{body_py})", "", False
        out.add(py, rs if rs_ok else None)
        # Annex B lets a lookahead carry a quantifier; lookbehinds may not.
        return kind

    def backreference(self, out: _Out, index: int) -> None:
        if index in self.closed:
            out.add(f"(?(g{index})(?P=g{index}))", None)
        else:
            # A group that has not closed yet has captured nothing: JavaScript matches "".
            out.add("(?:)", None)

    def atom_escape(self, out: _Out) -> None:
        self.pos += 1  # the backslash
        c = self.peek()
        if c == "":
            raise self.error("\\ at end of pattern")
        if c in "dDwWsS":
            self.pos += 1
            self.emit_set(out, _class_escape(c.lower()), negate=c.isupper())
            return
        if c == "k" and self.names:
            m = re.match(r"k<([A-Za-z_$][A-Za-z0-9_$]*)>", self.src[self.pos :])
            if not m or m.group(1) not in self.names:
                raise self.error("Invalid named capture referenced")
            self.pos += m.end()
            index = self.name_to_index.get(m.group(1))
            if index is None:
                # Named later in the pattern: not captured yet at this point.
                out.add("(?:)", None)
            else:
                self.backreference(out, index)
            return
        if c in "123456789":
            m = re.match(r"[0-9]+", self.src[self.pos :])
            assert m is not None
            value = int(m.group(0))
            if value <= self.total_groups:
                self.pos += m.end()
                self.backreference(out, value)
                return
        if c == "c" and not re.match(r"c[A-Za-z]", self.src[self.pos :]):
            # Annex B: "\c" not followed by a letter is a literal backslash; "c" comes next.
            self.emit_char(out, ord("\\"))
            return
        self.emit_char(out, self.character_escape(in_class=False))

    def character_escape(self, in_class: bool) -> int:
        """Parse a CharacterEscape after the backslash; return its code unit."""
        src, c = self.src, self.peek()
        simple = {"f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}
        if c in simple:
            self.pos += 1
            return simple[c]
        if c == "c":
            nxt = self.peek(1)
            if nxt.isascii() and (nxt.isalpha() or (in_class and (nxt.isdigit() or nxt == "_"))):
                self.pos += 2
                return ord(nxt) % 32
            # caller handles the literal-backslash case outside classes
            self.pos += 1
            return ord("c")
        if c == "x":
            m = re.match(r"x([0-9A-Fa-f]{2})", src[self.pos :])
            if m:
                self.pos += m.end()
                return int(m.group(1), 16)
            self.pos += 1
            return ord("x")
        if c == "u":
            m = re.match(r"u([0-9A-Fa-f]{4})", src[self.pos :])
            if m:
                self.pos += m.end()
                return int(m.group(1), 16)
            self.pos += 1
            return ord("u")
        if c in "01234567":
            # Annex B legacy octal escape (\0 alone is NUL).
            m = re.match(r"[0-3][0-7]{0,2}|[4-7][0-7]?", src[self.pos :])
            assert m is not None
            digits = m.group(0)
            self.pos += len(digits)
            return int(digits, 8)
        # IdentityEscape: any other character stands for itself (\8, \9, \/, \-, \a, \p ...).
        self.pos += 1
        return ord(c)

    def char_class(self, out: _Out) -> None:
        self.pos += 1
        negate = False
        if self.peek() == "^":
            negate = True
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        while True:
            c = self.peek()
            if c == "":
                raise self.error("Unterminated character class")
            if c == "]":
                self.pos += 1
                break
            first = self.class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.pos += 1
                second = self.class_atom()
                if isinstance(first, int) and isinstance(second, int):
                    if first > second:
                        raise self.error("Range out of order in character class")
                    ranges.append((first, second))
                    continue
                # Annex B: a class escape at either end makes "-" a literal.
                for atom in (first, second):
                    ranges.extend(atom if isinstance(atom, list) else [(atom, atom)])
                ranges.append((0x2D, 0x2D))
                continue
            ranges.extend(first if isinstance(first, list) else [(first, first)])
        self.emit_set(out, ranges, negate)

    def class_atom(self) -> int | list[tuple[int, int]]:
        c = self.peek()
        if c != "\\":
            self.pos += 1
            return ord(c)
        self.pos += 1
        c = self.peek()
        if c == "":
            raise self.error("\\ at end of pattern")
        if c in "dDwWsS":
            self.pos += 1
            base = _class_escape(c.lower())
            return _complement(base) if c.isupper() else base
        if c == "b":
            self.pos += 1
            return 0x08
        if c == "c" and not re.match(r"c[A-Za-z0-9_]", self.src[self.pos :]):
            # Literal backslash; the "c" is read as the next class atom.
            return ord("\\")
        if c in "89":
            self.pos += 1
            return ord(c)
        return self.character_escape(in_class=True)

    # -- emission --------------------------------------------------------------------------
    def emit_char(self, out: _Out, cp: int) -> None:
        if self.ignore_case:
            self.emit_set(out, [(cp, cp)])
            return
        rs = None if _SURROGATES[0] <= cp <= _SURROGATES[1] else _esc(cp)
        out.add(_esc(cp), rs)

    def emit_set(self, out: _Out, ranges: list[tuple[int, int]], negate: bool = False) -> None:
        """Emit a set of code units; with ``i``, close it under JavaScript case folding first."""
        if self.ignore_case:
            ranges = _case_close(ranges)
        ranges = _complement(ranges) if negate else _normalize(ranges)
        if not ranges:
            out.add("(?!)", None)
            return
        text = _class_text(ranges)
        spanned = _surrogates_covered(ranges)
        if spanned == "none":
            out.add(text, text)
        elif spanned == "all":
            # Rust sees code points: list what is excluded, so astral characters match too.
            excluded = _complement(ranges)
            out.add(text, ("[^" + _class_text(excluded)[1:]) if excluded else "[\\s\\S]")
            out.atom_spans_surrogates = True
        else:
            out.add(text, None)


def _class_escape(c: str) -> list[tuple[int, int]]:
    return list({"d": _JS_DIGIT, "w": _JS_WORD, "s": _JS_SPACE}[c])


@lru_cache(maxsize=1)
def _canonical_table() -> tuple[array, dict[int, tuple[int, ...]], array]:
    """JavaScript's non-unicode ``Canonicalize``: upper-case, unless that leaves one unit or
    maps a non-ASCII unit onto ASCII. Two units match under ``i`` iff their canonical forms do.

    Also returns the groups of units sharing a canonical form, only those of more than one
    unit, and their sorted units: the only ones case-closing can add to a set. Kept for the
    life of the process (every ``i`` pattern uses it), so compact: a group per unit as Python
    lists and ints held ~10 MB of the intake's memory; 2-byte arrays and ~1,100 groups hold
    ~0.2 MB."""
    canon = array("H", range(_MAX_UNIT + 1))
    groups: dict[int, list[int]] = {}
    for cu in range(_MAX_UNIT + 1):
        if not _SURROGATES[0] <= cu <= _SURROGATES[1]:
            up = chr(cu).upper()
            if len(up) == 1 and not (cu >= 128 and ord(up) < 128) and ord(up) != cu:
                canon[cu] = ord(up)
                groups.setdefault(ord(up), []).append(cu)
    for c, units in groups.items():  # a form is in its own group when it is its own form
        if canon[c] == c:
            units.append(c)
    members = {c: tuple(sorted(units)) for c, units in groups.items() if len(units) > 1}
    foldable = array("H", sorted(cu for group in members.values() for cu in group))
    return canon, members, foldable


def _case_close(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    canon, members, foldable = _canonical_table()
    extra: list[tuple[int, int]] = []
    for lo, hi in ranges:
        for i in range(bisect_left(foldable, lo), bisect_right(foldable, hi)):
            extra.extend((m, m) for m in members[canon[foldable[i]]])
    return _normalize(list(ranges) + extra)


@dataclass(frozen=True)
class JsRegex:
    """A compiled JavaScript regex; ``search`` answers like ``RegExp.prototype.test``."""

    source: str
    ignore_case: bool
    python: re.Pattern[str]
    #: An ECMAScript pattern jsonschema-rs evaluates with identical verdicts, or None.
    rs_source: str | None

    def search(self, subject: str) -> bool:
        return self.python.search(to_utf16_units(subject)) is not None


@lru_cache(maxsize=4096)
def compile_js_regex(source: str, ignore_case: bool = False) -> JsRegex:
    """Compile ``new RegExp(source, ignore_case ? "i" : "")`` semantics; raise JsRegexError."""
    parser = _Parser(source, ignore_case)
    out = parser.parse()
    py = "".join(out.py)
    try:
        compiled = re.compile(py)
    except (re.error, OverflowError, RecursionError) as exc:
        # Valid JavaScript that Python cannot run (e.g. variable-length lookbehind).
        raise JsRegexError(
            f"Invalid regular expression: /{source}/: not supported by this validator ({exc})"
        ) from exc
    rs = "".join(out.rs) if out.rs_ok else None
    return JsRegex(source, ignore_case, compiled, rs)
