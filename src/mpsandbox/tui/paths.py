"""Paths as the screens show them: under the home directory as ``~/...``, as a shell
prints them, so that a header or a detail line keeps the part that tells files apart (and a
screenshot names no user). Only for paths the sandbox itself reports (schema files, sources,
configuration files), never for event content, which is always shown as sent."""

from __future__ import annotations

import os


def shown_path(path: object) -> str:
    """``path`` with the home directory written ``~``; anything else (URLs, other places)
    unchanged."""
    text = "" if path is None else str(path)
    home = os.path.expanduser("~").rstrip(os.sep)
    if home and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


def typed_path(text: str) -> str:
    """A path typed into a field, as a shell would read it: ``~`` is the home directory."""
    return os.path.expanduser(text.strip())
