"""Commands that send a stored event again, for people to paste into a shell."""

from __future__ import annotations

import shlex
from typing import Any

from mpsandbox import jsonio


def beacon_curl_command(capsule: Any, url: str) -> str:
    """A one-line ``curl`` that sends a legacy capsule as EventLogging's beacon does: the
    capsule in the query string, an empty POST body."""
    from mpsandbox.legacy import beacon_query

    return " ".join(["curl", "-sS", "-X", "POST", shlex.quote(f"{url}?{beacon_query(capsule)}")])


def curl_command(event: Any, url: str) -> str:
    """A one-line ``curl`` that posts ``event`` (as received) to ``url`` like a client would.

    Quoted with shlex, so an event full of quotes, ``$`` or backticks stays exactly itself.
    """
    body = jsonio.dumps_str(event)
    return " ".join(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            "-H",
            shlex.quote("Content-Type: application/json"),
            "--data-binary",
            shlex.quote(body),
            shlex.quote(url),
        ]
    )
