"""The event query language shared by the TUI's search box and ``/sandbox/events?q=``.

A query is whitespace-separated terms::

    stream:product_metrics.web_base is:invalid -action:click "session_id"

Rules:

* Different keys are ANDed: every term must hold.
* The same key repeated is ORed: ``stream:a stream:b`` matches events of either stream,
  ``is:invalid is:error`` events that are either. Negated terms are always ANDed:
  ``-stream:a -stream:b`` excludes both.
* Free text (a bare word or a ``"quoted phrase"``) is a case-insensitive substring of the
  event JSON as received; several free-text terms must all appear.
* ``-`` in front of any term negates it. Events where the field is missing count as "not
  equal": ``-stream:x`` keeps events that have no stream at all.
* Values may be quoted: ``stream:"a b"``; inside quotes ``\\"`` is a quote and ``\\\\`` a
  backslash.
* A bare word with a colon is a ``key:value`` term when what precedes the colon is a known
  key, or a plain word (letters and ``_``) not followed by ``:/``; an unknown key is then a
  syntax error with a suggestion ("did you mean ..."). Anything else with a colon, such as
  ``https://example.org`` or ``12:30``, is free text; to search for text like
  ``error:foo``, quote it: ``"error:foo"``.
* Relative times (``since:5m``) count back from the moment the query runs, unless
  :func:`parse_query` is given ``now`` to pin them. Dates without a zone are local time.

This module knows SQL column names but imports nothing from the store, so the store, the
HTTP faces and the TUI can all import it without cycles.
"""

from __future__ import annotations

import difflib
import json
import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from mpsandbox import records
from mpsandbox.errors import MpsandboxError

__all__ = [
    "KEYS",
    "QUERY_EXAMPLES",
    "QUERY_HELP",
    "Query",
    "QuerySyntaxError",
    "Term",
    "TextBlocks",
    "like_escape",
    "parse_query",
    "schema_clause",
    "text_candidates",
    "text_clause",
]

#: (syntax, meaning) pairs, in the order help screens show them. The TUI help screen and
#: the OpenAPI document both render this list.
QUERY_HELP: list[tuple[str, str]] = [
    ("stream:NAME", "events of that stream (meta.stream)"),
    (
        "is:valid / is:invalid / is:error / is:legacy",
        "events with that verdict (legacy: an unvalidated EventLogging beacon)",
    ),
    (
        "schema:TITLE  schema:TITLE/VERSION  schema:PREFIX/*",
        "events of a schema title; a version, which may be a prefix (1 matches 1.x.y); "
        "or every title starting with PREFIX/",
    ),
    ("action:NAME", "events whose action field is NAME"),
    ("session:ID", "events of a performer.session_id"),
    ("pageview:ID", "events of a performer.pageview_id"),
    ("id:META_ID", "the event with that meta.id (as sent or as filled in)"),
    ("request:N", "events that came in request number N"),
    ("has:error", "events with validation errors, or that failed with an error"),
    ("has:fill", "events the intake filled fields into (production fill-ins, defaults)"),
    (
        "has:finding",
        "events the platform rules found something wrong with (warnings and errors, not info)",
    ),
    (
        "has:flip",
        "events whose verdict flipped when a schema change had them judged again",
    ),
    (
        "finding:KIND",
        "events with that finding (finding:sampling.out_of_sample), or any finding of a "
        "family (finding:sampling, finding:funnel)",
    ),
    ("group:N", "events in error group N (see the errors list)"),
    (
        "since:WHEN  until:WHEN",
        "received at or after / before WHEN: an ISO date or time (2024-10-01, "
        "2024-10-01T12:00:00Z; local time without a zone) or a time back from now "
        "(30s, 5m, 2h, 1d, 1w)",
    ),
    ('word  "some text"', "the event JSON contains the text (case-insensitive)"),
    ("-TERM", 'negates any term: -is:valid, -stream:x, -"text"'),
    ('key:"a b"', "quote values that contain spaces"),
    ("stream:a stream:b", "the same key repeated: either (OR); different keys: all (AND)"),
]

#: (query, meaning) examples for help screens and documentation.
QUERY_EXAMPLES: list[tuple[str, str]] = [
    ("is:invalid since:10m", "invalid events of the last ten minutes"),
    ("stream:product_metrics.web_base -is:valid", "what failed in one stream"),
    ("schema:analytics/product_metrics/web/base/1.3.0", "one schema version"),
    ("schema:analytics/mediawiki/* has:error", "failures of every mediawiki schema"),
    ("action:click action:hover session:abc", "clicks or hovers of one session"),
    ('"en.wikipedia.org" -has:fill', "events mentioning a domain, sent with every field"),
]


class QuerySyntaxError(MpsandboxError, ValueError):
    """A query that cannot be parsed; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.args = (message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} (at character {self.position + 1})"


VERDICTS = records.VERDICTS
HAS_VALUES = ("error", "fill", "finding", "flip")

#: Every key the language knows, with what its value is.
KEYS: dict[str, str] = {
    "stream": "a stream name",
    "action": "an action",
    "session": "a session id",
    "pageview": "a pageview id",
    "id": "a meta.id",
    "request": "a request number",
    "is": "valid, invalid, error or legacy",
    "schema": "a schema title, title/version or prefix/*",
    "has": "error, fill, finding or flip",
    "finding": "a finding kind such as sampling.out_of_sample, or a family such as sampling",
    "since": "a date/time or a duration such as 5m",
    "until": "a date/time or a duration such as 5m",
    "group": "an error group number",
}

_EQUALITY_COLUMNS = {
    "stream": "stream",
    "action": "action",
    "session": "session_id",
    "pageview": "pageview_id",
    "id": "meta_id",
}
_DESCRIBE = {
    "stream": "stream",
    "action": "action",
    "session": "session",
    "pageview": "pageview",
    "id": "meta.id",
    "request": "request",
    "schema": "schema",
    "group": "error group",
    "finding": "finding",
}
_KEY_WORD = re.compile(r"[A-Za-z_]+")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}


#: The SQL expression that reads an event's JSON as received: every query over the text
#: goes through it (so a store that packs the text changes this one place).
EVENT_TEXT = "unpack_text(event)"
#: The free-text index (see :mod:`mpsandbox.store.text_index`): an FTS5 trigram table whose
#: document ``b`` is the text of the events with ids ``b * TEXT_BLOCK`` to
#: ``b * TEXT_BLOCK + TEXT_BLOCK - 1``; events from ``upto`` in ``TEXT_STATE`` on are not
#: indexed yet.
TEXT_INDEX = "event_text"
TEXT_STATE = "event_text_state"
TEXT_BLOCK = 16
#: Trigrams a free-text term is narrowed by at most (spread over the term): more narrow
#: little further and cost a doclist read each.
_MAX_TRIGRAMS = 24


def _trigram_match(value: str) -> str | None:
    """The FTS5 query that every block holding ``value`` (ignoring case) matches, or None
    when the term is too short to have a trigram."""
    # Not folded here: the tokenizer folds case one character for one, Python may not
    # ("ß".casefold() is "ss"), and a longer string would be a phrase. Trigrams with a
    # double quote are not indexed (a block's document keeps the pieces between quotes).
    grams = [value[i : i + 3] for i in range(len(value) - 2)]
    grams = list(dict.fromkeys(g for g in grams if '"' not in g))
    if not grams:
        return None
    if len(grams) > _MAX_TRIGRAMS:
        step = (len(grams) - 1) / (_MAX_TRIGRAMS - 1)
        grams = [grams[round(i * step)] for i in range(_MAX_TRIGRAMS)]
    return " AND ".join(f'"{g}"' for g in grams)


def text_candidates(value: str) -> str | None:
    """The index query (FTS5 MATCH) whose blocks hold every event containing ``value``."""
    return _trigram_match(value)


def text_clause(
    value: str, *, indexed: bool = True, blocks: TextBlocks | None = None
) -> tuple[str, list[Any]]:
    """Free text: ``value`` is a case-insensitive (ASCII, as LIKE) substring of the event
    JSON as received.

    The exact test is the LIKE. With ``indexed`` (a positive term with a trigram) the index
    narrows the events first: the blocks whose text has every trigram of the term, plus
    the events not indexed yet. The trigram tokenizer folds case (Unicode too), so a block
    holding the text always matches and the LIKE decides. A negated term cannot be
    narrowed that way (its matches are the events the index does not point to), nor a term
    without a trigram: those scan. ``blocks`` are the candidates a reader already listed
    (see :class:`TextBlocks`), so the index is not asked twice.
    """
    like = f"{EVENT_TEXT} LIKE ? ESCAPE '\\'", [f"%{like_escape(value)}%"]
    match = _trigram_match(value) if indexed else None
    if match is None:
        return like
    offsets = ", ".join(f"({i})" for i in range(TEXT_BLOCK))
    # CROSS JOIN: the blocks outside, so the index is asked once, not once per offset.
    if blocks is not None:
        source, params = "json_each(?) t CROSS JOIN ", [json.dumps(blocks.blocks)]
        block, tail, tail_params = "t.value", "?", [blocks.upto]
        where = ""
    else:
        source, params = f"{TEXT_INDEX} t CROSS JOIN ", []
        block, tail, tail_params = "t.rowid", f"(SELECT upto FROM {TEXT_STATE})", []
        where, params = f" WHERE {TEXT_INDEX} MATCH ?", [match]
    candidates = (
        f"id IN (SELECT {block} * {TEXT_BLOCK} + o.column1"
        f" FROM {source}(VALUES {offsets}) o{where}"
        f" UNION ALL SELECT id FROM events WHERE id >= {tail})"
    )
    return f"{candidates} AND {like[0]}", [*params, *tail_params, *like[1]]


@dataclass(frozen=True)
class TextBlocks:
    """The index's candidate blocks for a free-text term, read by a reader before its
    query: ``upto`` was read first, so whatever the writer indexes meanwhile is at or above
    it and stays covered by the scan of the events from ``upto`` on."""

    upto: int
    blocks: tuple[int, ...]


def like_escape(text: str) -> str:
    """Escape LIKE wildcards so user text matches literally (used with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def schema_clause(value: str) -> tuple[str, list[Any]]:
    """Match a schema by title, or by "title/version" where version may be a prefix.

    Titles contain slashes themselves ("analytics/mediawiki/client/metrics_event"), so a
    trailing segment counts as a version when it starts with a digit (schema titles do not
    end in one). A full x.y.z version is an exact match, served by the (title, version, id)
    index without sorting; a shorter one matches whole components ("1" matches 1.0.0 and
    1.2.0, not 10.0.0) while walking the (title, id) index.
    """
    value = value.strip().strip("/")
    title, _, version = value.rpartition("/")
    if not (title and version[:1].isdigit()):
        return "schema_title = ?", [value]
    if version.count(".") >= 2:
        return "schema_title = ? AND schema_version = ?", [title, version]
    return (
        "schema_title = ? AND (schema_version = ? OR schema_version LIKE ? ESCAPE '\\')",
        [title, version, like_escape(version) + ".%"],
    )


def _schema_prefix_clause(prefix: str) -> tuple[str, list[Any]]:
    """Titles starting with ``prefix``: a range on the (title, id) index, not a LIKE
    (LIKE is case-insensitive, so SQLite could not use the index for it)."""
    if not prefix:
        return "schema_title IS NOT NULL", []
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return "schema_title >= ? AND schema_title < ?", [prefix, upper]


@dataclass(frozen=True)
class Term:
    """One parsed term. ``key`` is None for free text."""

    key: str | None
    value: str
    negated: bool = False
    position: int = 0
    #: since/until: epoch seconds for an absolute time, or seconds back from now.
    seconds: float | None = None
    relative: bool = False
    #: Free text that a reader chose to test by a scan, its index naming too many events
    #: to be worth it, or the candidate blocks it read (see :meth:`Query.planned`).
    scan: bool = field(default=False, compare=False)
    blocks: TextBlocks | None = field(default=None, compare=False)

    def sql(self, now: float | None = None) -> tuple[str, list[Any]]:
        """This term as a WHERE expression and its parameters, for the caller to negate
        when it is negated (free text is then tested without its index)."""
        key, value = self.key, self.value
        if key is None:
            return text_clause(value, indexed=not (self.negated or self.scan), blocks=self.blocks)
        if key in _EQUALITY_COLUMNS:
            return f"{_EQUALITY_COLUMNS[key]} = ?", [value]
        if key == "is":
            return "verdict = ?", [value]
        if key == "schema":
            if value.endswith("*"):
                return _schema_prefix_clause(value[:-1].lstrip("/"))
            return schema_clause(value)
        if key == "request":
            return "request_id = ?", [int(value)]
        if key == "group":
            return "id IN (SELECT event_id FROM error_links WHERE group_id = ?)", [int(value)]
        if key == "finding":
            if "." in value:
                return "id IN (SELECT event_id FROM event_findings WHERE kind = ?)", [value]
            return (
                "id IN (SELECT event_id FROM event_findings WHERE kind >= ? AND kind < ?)",
                [value + ".", value + "/"],  # "/" sorts right after "."
            )
        if key == "has":
            if value == "finding":
                return "problems > 0", []
            if value == "fill":
                # The writer stores no fills as NULL (migration 0010 made '' and '{}' NULL).
                return "fills IS NOT NULL", []
            if value == "flip":
                return "id IN (SELECT event_id FROM flips)", []
            return "(verdict = 'error' OR (errors IS NOT NULL AND errors NOT IN ('', '[]')))", []
        if key in ("since", "until"):
            assert self.seconds is not None
            at = self.seconds
            if self.relative:
                at = (time.time() if now is None else now) - self.seconds
            op = ">=" if key == "since" else "<"
            return f"received_at {op} ?", [at]
        raise AssertionError(f"unhandled key {key!r}")

    def describe(self) -> str:
        key, value = self.key, self.value
        if key is None:
            text = f'text "{value}"'
        elif key == "is":
            text = value
        elif key == "has":
            text = {
                "error": "with errors",
                "fill": "with fill-ins",
                "flip": "whose verdict flipped",
            }.get(value, "with findings")
        elif key in ("since", "until"):
            text = f"{'since' if key == 'since' else 'before'} {_describe_time(self)}"
        elif key == "schema" and value.endswith("*"):
            text = f"schema {value[:-1]}…"
        else:
            text = f"{_DESCRIBE[key]} {value}"
        return f"not {text}" if self.negated else text


def _describe_time(term: Term) -> str:
    if not term.relative:
        return term.value
    m = _DURATION.fullmatch(term.value.strip())
    if m is None:
        return term.value
    n, unit = m.group(1), m.group(2).lower()
    name = _UNIT_NAMES[unit]
    return f"{n} {name}{'' if n == '1' else 's'} ago"


@dataclass(frozen=True)
class Query:
    """A parsed query: terms that compile to SQL clauses over the ``events`` table."""

    text: str
    terms: tuple[Term, ...] = ()
    #: Pins relative times (since:5m) to this moment; None: the moment the query runs.
    now: float | None = field(default=None, compare=False)

    def is_empty(self) -> bool:
        return not self.terms

    def indexed_text(self) -> list[str]:
        """The free-text values the index would narrow (positive, a trigram or longer)."""
        return [
            t.value
            for t in self.terms
            if t.key is None
            and not t.negated
            and not t.scan
            and t.blocks is None
            and text_candidates(t.value) is not None
        ]

    def planned(self, plan: dict[str, TextBlocks | None]) -> Query:
        """This query with each free-text value of ``plan`` tested through the candidate
        blocks given, or, for None, by a scan: a word most events hold (``click``) is found
        at once walking the newest events, while its candidates would be every event."""
        terms = tuple(
            replace(t, scan=plan[t.value] is None, blocks=plan[t.value])
            if t.key is None and not t.negated and t.value in plan
            else t
            for t in self.terms
        )
        return replace(self, terms=terms)

    def clauses(self, now: float | None = None) -> list[tuple[str, list[Any]]]:
        """One ``(sql, params)`` per positive key (its repeats ORed), one per negated term
        and one per free-text term; the caller ANDs them."""
        now = self.now if now is None else now
        out: list[tuple[str, list[Any]]] = []
        grouped: dict[str, list[Term]] = {}
        for term in self.terms:
            if term.negated:
                sql, params = term.sql(now)
                # coalesce: a comparison with NULL is NULL, and NOT NULL is NULL (excluded);
                # a missing field is "not equal", so the event must stay.
                out.append((f"NOT coalesce(({sql}), 0)", params))
            elif term.key is None:
                out.append(term.sql(now))
            else:
                grouped.setdefault(term.key, []).append(term)
        for key, terms in grouped.items():
            out.append(_or(key, terms, now))
        return out

    def where(self, now: float | None = None) -> tuple[str, list[Any]]:
        sql, params = [], []
        for clause, values in self.clauses(now):
            sql.append(clause)
            params.extend(values)
        return (" AND ".join(sql) or "1"), params

    def describe(self) -> str:
        """Short human text: ``stream a or b; invalid; not action click``."""
        if not self.terms:
            return "all events"
        parts: list[str] = []
        grouped: dict[str, list[Term]] = {}
        for term in self.terms:
            if term.negated or term.key is None:
                parts.append(term.describe())
            else:
                if term.key not in grouped:
                    parts.append(term.key)  # placeholder, filled below
                grouped.setdefault(term.key, []).append(term)
        out = []
        for part in parts:
            terms = grouped.get(part)
            if terms is None:
                out.append(part)
            elif len(terms) == 1:
                out.append(terms[0].describe())
            elif part in _DESCRIBE and part != "schema":
                out.append(f"{_DESCRIBE[part]} " + " or ".join(t.value for t in terms))
            else:
                out.append(" or ".join(t.describe() for t in terms))
        return "; ".join(out)

    def __str__(self) -> str:
        return self.text


def _or(key: str, terms: list[Term], now: float | None) -> tuple[str, list[Any]]:
    if len(terms) == 1:
        return terms[0].sql(now)
    column = _EQUALITY_COLUMNS.get(key) or ("verdict" if key == "is" else None)
    values = list(dict.fromkeys(t.value for t in terms))
    if column is not None:
        # IN keeps the (column, id) index usable.
        if len(values) == 1:
            return f"{column} = ?", values
        return f"{column} IN ({', '.join('?' * len(values))})", values
    sql, params = [], []
    for t in terms:
        s, p = t.sql(now)
        sql.append(f"({s})")
        params.extend(p)
    return "(" + " OR ".join(sql) + ")", params


# -- parsing ---------------------------------------------------------------------------------


def _suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.5)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read a quoted string starting at the opening quote; return (content, end index)."""
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in '"\\':
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise QuerySyntaxError('unterminated quote: add a closing "', start)


def _parse_time(term_key: str, value: str, position: int) -> tuple[float, bool]:
    v = value.strip()
    m = _DURATION.fullmatch(v)
    if m is not None:
        return float(m.group(1)) * _UNITS[m.group(2).lower()], True
    try:
        return datetime.fromisoformat(v).timestamp(), False
    except ValueError:
        pass
    raise QuerySyntaxError(
        f"{term_key}: takes an ISO date or time (2024-10-01, 2024-10-01T12:00:00Z) or a "
        f'duration back from now (30s, 5m, 2h, 1d, 1w); got "{value}"',
        position,
    )


def _make_term(key: str, value: str, negated: bool, start: int, vpos: int) -> Term:
    if value == "":
        raise QuerySyntaxError(f"{key}: needs a value ({KEYS[key]})", vpos)
    if key == "is":
        v = value.lower()
        if v not in VERDICTS:
            raise QuerySyntaxError(
                f'is: takes valid, invalid, error or legacy; got "{value}"{_suggest(v, VERDICTS)}',
                vpos,
            )
        value = v
    elif key == "has":
        v = value.lower()
        if v not in HAS_VALUES:
            raise QuerySyntaxError(
                f'has: takes error, fill, finding or flip; got "{value}"{_suggest(v, HAS_VALUES)}',
                vpos,
            )
        value = v
    elif key == "finding":
        from mpsandbox.platform.findings import KINDS

        v = value.lower()
        families = sorted({k.split(".", 1)[0] for k in KINDS})
        if v not in KINDS and v not in families:
            raise QuerySyntaxError(
                f'finding: takes a finding kind or family; got "{value}"'
                f"{_suggest(v, [*KINDS, *families])} (families: {', '.join(families)})",
                vpos,
            )
        value = v
    elif key in ("request", "group"):
        try:
            n = int(value)
        except ValueError:
            n = -1
        if n < 0 or not value.strip().isdigit():
            raise QuerySyntaxError(f'{key}: takes a number; got "{value}"', vpos)
        value = str(n)
    elif key in ("since", "until"):
        seconds, relative = _parse_time(key, value, vpos)
        return Term(key, value, negated, start, seconds=seconds, relative=relative)
    elif key == "schema":
        star = value.find("*")
        if star != -1 and star != len(value) - 1:
            raise QuerySyntaxError(
                "schema: * is only allowed at the end (schema:analytics/mediawiki/*)",
                vpos + star,
            )
    return Term(key, value, negated, start)


def parse_query(text: str | None, *, now: float | None = None) -> Query:
    """Parse ``text``; raise :class:`QuerySyntaxError` naming the problem and where.

    ``now`` pins relative times (``since:5m``) to that moment; without it they are worked
    out each time the query runs (a live view keeps a sliding window).
    """
    text = text or ""
    terms: list[Term] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        negated = False
        if text[i] == "-":
            negated = True
            i += 1
            if i >= n or text[i].isspace():
                raise QuerySyntaxError('"-" must be followed by a term, as in -is:valid', start)
        if text[i] == '"':
            value, i = _read_quoted(text, i)
            if value == "":
                raise QuerySyntaxError('empty quotes: put the text to search between ""', start)
            terms.append(Term(None, value, negated, start))
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] != '"':
            j += 1
        word = text[i:j]
        prefix, colon, rest = word.partition(":")
        is_key = bool(colon) and (
            prefix.lower() in KEYS or (_KEY_WORD.fullmatch(prefix) and not rest.startswith("/"))
        )
        if not is_key:
            # Free text; a quote inside a bare word is just a character.
            while j < n and not text[j].isspace():
                j += 1
            terms.append(Term(None, text[i:j], negated, start))
            i = j
            continue
        key = prefix.lower()
        if key not in KEYS:
            raise QuerySyntaxError(
                f'unknown key "{prefix}:"{_suggest(key, list(KEYS))}; keys are '
                f'{", ".join(KEYS)}. To search for the text, quote it: "{word}"',
                i,
            )
        vpos = i + len(prefix) + 1
        if j < n and text[j] == '"':
            if rest:
                raise QuerySyntaxError(
                    f'{key}: a quoted value must start right after the colon: {key}:"..."', j
                )
            value, j = _read_quoted(text, j)
            if j < n and not text[j].isspace():
                raise QuerySyntaxError("put a space after the closing quote", j)
        else:
            value = rest
        terms.append(_make_term(key, value, negated, start, vpos))
        i = j
    return Query(text, tuple(terms), now)
