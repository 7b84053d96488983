"""AJV 6.12's "fast" string formats, the ones EventGate validates with.

Fast mode is a set of regular expressions, not parsers: ``date-time`` accepts month 19 and
day 39 and rejects a timestamp without a zone, which is exactly what producers experience, so
the sandbox must agree with it rather than with ``datetime.fromisoformat``. The sources below are
the JavaScript regexes themselves, run through the JavaScript-regex translator so that
case-insensitivity, ``\\s`` and UTF-16 counting behave as in Node.
"""

from __future__ import annotations

from collections.abc import Callable

from jsonschema import FormatChecker

from mpsandbox.schemas.ajv_regex import JsRegex, JsRegexError, compile_js_regex

__all__ = ["AJV_FORMATS", "FORMAT_CHECKER", "format_regex", "is_known_format"]

_IPV4_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4_TAIL = rf"{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}"
_H = "[0-9a-f]{1,4}"

_IPV6 = (
    r"^\s*(?:"
    rf"(?:(?:{_H}:){{7}}(?:{_H}|:))"
    rf"|(?:(?:{_H}:){{6}}(?::{_H}|(?:{_IPV4_TAIL})|:))"
    rf"|(?:(?:{_H}:){{5}}(?:(?:(?::{_H}){{1,2}})|:(?:{_IPV4_TAIL})|:))"
    rf"|(?:(?:{_H}:){{4}}(?:(?:(?::{_H}){{1,3}})|(?:(?::{_H})?:(?:{_IPV4_TAIL}))|:))"
    rf"|(?:(?:{_H}:){{3}}(?:(?:(?::{_H}){{1,4}})|(?:(?::{_H}){{0,2}}:(?:{_IPV4_TAIL}))|:))"
    rf"|(?:(?:{_H}:){{2}}(?:(?:(?::{_H}){{1,5}})|(?:(?::{_H}){{0,3}}:(?:{_IPV4_TAIL}))|:))"
    rf"|(?:(?:{_H}:){{1}}(?:(?:(?::{_H}){{1,6}})|(?:(?::{_H}){{0,4}}:(?:{_IPV4_TAIL}))|:))"
    rf"|(?::(?:(?:(?::{_H}){{1,7}})|(?:(?::{_H}){{0,5}}:(?:{_IPV4_TAIL}))|:))"
    r")(?:%.+)?\s*$"
)

# The "url" format is dperini's URL regex as AJV ships it: rewritten for engines without the
# `u` flag, so astral characters appear as surrogate pairs (our subjects are UTF-16 units too).
_URL_CHAR = (
    r"(?:[\0-\x08\x0E-\x1F!-\x9F\xA1-\u167F\u1681-\u1FFF\u200B-\u2027\u202A-\u202E"
    r"\u2030-\u205E\u2060-\u2FFF\u3001-\uD7FF\uE000-\uFEFE\uFF00-\uFFFF]"
    r"|[\uD800-\uDBFF][\uDC00-\uDFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])"
    r"|(?:[^\uD800-\uDBFF]|^)[\uDC00-\uDFFF])"
)
_URL_LABEL_CHAR = (
    r"(?:[0-9a-z\xA1-\uD7FF\uE000-\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])"
    r"|(?:[^\uD800-\uDBFF]|^)[\uDC00-\uDFFF])"
)
_URL_TLD_CHAR = (
    r"(?:[a-z\xA1-\uD7FF\uE000-\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])"
    r"|(?:[^\uD800-\uDBFF]|^)[\uDC00-\uDFFF])"
)
_URL = (
    r"^(?:(?:http[s\u017F]?|ftp):\/\/)"
    rf"(?:{_URL_CHAR}+(?::{_URL_CHAR}*)?@)?"
    r"(?:(?!10(?:\.[0-9]{1,3}){3})(?!127(?:\.[0-9]{1,3}){3})(?!169\.254(?:\.[0-9]{1,3}){2})"
    r"(?!192\.168(?:\.[0-9]{1,3}){2})(?!172\.(?:1[6-9]|2[0-9]|3[01])(?:\.[0-9]{1,3}){2})"
    r"(?:[1-9][0-9]?|1[0-9][0-9]|2[01][0-9]|22[0-3])(?:\.(?:1?[0-9]{1,2}|2[0-4][0-9]|25[0-5])){2}"
    r"(?:\.(?:[1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9]|25[0-4]))"
    rf"|(?:(?:{_URL_LABEL_CHAR}+-)*{_URL_LABEL_CHAR}+)"
    rf"(?:\.(?:{_URL_LABEL_CHAR}+-)*{_URL_LABEL_CHAR}+)*"
    rf"(?:\.(?:{_URL_TLD_CHAR}{{2,}})))"
    rf"(?::[0-9]{{2,5}})?(?:\/{_URL_CHAR}*)?$"
)

_URI_TEMPLATE = (
    r"^(?:(?:[^\x00-\x20\"'<>%\\^`{|}]|%[0-9a-f]{2})"
    r"|\{[+#./;?&=,!@|]?(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?"
    r"(?:,(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?)*\})*$"
)

#: name -> (JavaScript source, case-insensitive)
_FAST_SOURCES: dict[str, tuple[str, bool]] = {
    "date": (r"^\d\d\d\d-[0-1]\d-[0-3]\d$", False),
    "time": (
        r"^(?:[0-2]\d:[0-5]\d:[0-5]\d|23:59:60)(?:\.\d+)?(?:z|[+-]\d\d(?::?\d\d)?)?$",
        True,
    ),
    "date-time": (
        r"^\d\d\d\d-[0-1]\d-[0-3]\d[t\s](?:[0-2]\d:[0-5]\d:[0-5]\d|23:59:60)(?:\.\d+)?"
        r"(?:z|[+-]\d\d(?::?\d\d)?)$",
        True,
    ),
    "uri": (r"^(?:[a-z][a-z0-9+\-.]*:)(?:\/?\/)?[^\s]*$", True),
    "uri-reference": (
        r"^(?:(?:[a-z][a-z0-9+\-.]*:)?\/?\/)?(?:[^\\\s#][^\s#]*)?(?:#[^\\\s]*)?$",
        True,
    ),
    "uri-template": (_URI_TEMPLATE, True),
    "url": (_URL, True),
    "email": (
        r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
        r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$",
        True,
    ),
    "hostname": (
        r"^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
        r"(?:\.[a-z0-9](?:[-0-9a-z]{0,61}[0-9a-z])?)*\.?$",
        True,
    ),
    "ipv4": (
        r"^(?:(?:25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d\d?)$",
        False,
    ),
    "ipv6": (_IPV6, True),
    "uuid": (r"^(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$", True),
    "json-pointer": (r"^(?:\/(?:[^~/]|~0|~1)*)*$", False),
    "json-pointer-uri-fragment": (
        r"^#(?:\/(?:[a-z0-9_\-.!$&'()*+,;:=@]|%[0-9a-f]{2}|~0|~1)*)*$",
        True,
    ),
    "relative-json-pointer": (r"^(?:0|[1-9][0-9]*)(?:#|(?:\/(?:[^~/]|~0|~1)*)*)$", False),
}


def _regex_format(value: str) -> bool:
    # AJV refuses a literal "\Z" (not JavaScript) before trying new RegExp().
    if compile_js_regex(r"[^\\]\\Z").search(value):
        return False
    try:
        compile_js_regex(value)
    except JsRegexError:
        return False
    return True


def _regex_checker(source: str, ignore_case: bool) -> Callable[[str], bool]:
    """Compile on first use: importing should not pay for formats no schema uses."""
    compiled = None

    def check(value: str) -> bool:
        nonlocal compiled
        if compiled is None:
            compiled = compile_js_regex(source, ignore_case)
        return compiled.search(value)

    return check


def _build() -> dict[str, Callable[[str], bool]]:
    formats = {name: _regex_checker(src, ic) for name, (src, ic) in _FAST_SOURCES.items()}
    formats["regex"] = _regex_format
    return formats


#: format name -> predicate over a str, exactly AJV 6.12 ``formats.fast``.
AJV_FORMATS: dict[str, Callable[[str], bool]] = _build()


def format_regex(name: str) -> JsRegex | None:
    """The compiled regex behind a fast format, or None for "regex" (a function in AJV)."""
    source = _FAST_SOURCES.get(name)
    return None if source is None else compile_js_regex(*source)


def is_known_format(name: object) -> bool:
    return isinstance(name, str) and name in AJV_FORMATS


def _make_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    for name, func in AJV_FORMATS.items():
        # Formats only ever judge strings (AJV registers them all with type "string").
        checker.checks(name)(lambda value, _f=func: not isinstance(value, str) or _f(value))
    return checker


#: The jsonschema FormatChecker the detailed validator consults.
FORMAT_CHECKER: FormatChecker = _make_checker()
