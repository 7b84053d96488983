"""Secrets in request headers are not stored: each is replaced by a marker at capture.

A dev wiki's session cookie rides along with every beacon it sends; stored, it would be in
every export, bundle, API answer and TUI screen. The marker keeps what a person needs to
debug (that the header was there, and how long it was) and nothing to steal.
``--keep-secrets`` (Settings.keep_secrets) stores them as received.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SECRET_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization", "set-cookie"})
_MARKER = re.compile(r"\[redacted: \d+ bytes\]")


def marker(value: str) -> str:
    """``[redacted: N bytes]``; N counts the bytes as sent (headers arrive as latin-1)."""
    try:
        size = len(value.encode("latin-1"))
    except UnicodeEncodeError:
        size = len(value.encode("utf-8", "surrogatepass"))
    return f"[redacted: {size} bytes]"


def is_marker(value: str) -> bool:
    return _MARKER.fullmatch(value) is not None


def redact_headers(
    headers: Iterable[tuple[str, str]], keep_secrets: bool = False
) -> list[tuple[str, str]]:
    """The headers as they are stored: secret values replaced unless ``keep_secrets``.
    A value that already is a marker (a re-imported export) stays as it is."""
    if keep_secrets:
        return list(headers)
    return [
        (k, marker(v)) if k.lower() in SECRET_HEADERS and not is_marker(v) else (k, v)
        for k, v in headers
    ]


def without_markers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers to send again: a redacted one is left out rather than sent as its marker."""
    return [(k, v) for k, v in headers if not (k.lower() in SECRET_HEADERS and is_marker(v))]
