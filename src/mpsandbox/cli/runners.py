"""How the commands run the long-lived parts: the event loop and the terminal UI."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from mpsandbox.config import Settings


def run_async(coro) -> Any:
    """Run on uvloop when available: it halves the event loop's share of each request."""
    # A short GIL switch interval lets the store's writer thread hand back the GIL promptly,
    # so committed answers are not held up by the 5 ms default while the loop is busy.
    sys.setswitchinterval(0.0005)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def run_tui(settings: Settings, *, listen: bool = True) -> int:
    """Run the terminal UI until the user quits; every acknowledged event is stored first."""
    from mpsandbox.tui.app import MpSandboxApp

    sys.setswitchinterval(0.0005)  # see run_async: the intake thread shares the GIL
    app = MpSandboxApp(settings, listen=listen)
    try:
        code = app.run()
    finally:
        app.shutdown_intake()
    return code or 0
