"""The one error base.

Every failure a user can cause or fix (a bad option, an unreadable file, a store that cannot be
written, a chaos spec that does not parse) is an :class:`MpsandboxError`: a message written for
that user and the exit status it means. The command line turns it into one line on stderr in
one place (``mpsandbox.cli.MpsandboxGroup``); servers and the TUI show the same message. This
module imports nothing of mpsandbox, so every layer, the schema code included, may use it.
"""

from __future__ import annotations


class MpsandboxError(Exception):
    """A failure with a message meant for the user, and the exit status it calls for
    (2: the input or the setup is wrong; 1: the work ran and found problems)."""

    exit_code: int = 2

    def __init__(self, message: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class PortBusy(Exception):
    """The intake's port is taken. Here, not beside the server that raises it, because the
    faces catch it (the TUI, through its intake child): importing the server for it loaded
    aiohttp into the TUI's process (~12 MB resident) that never serves."""

    def __init__(self, host: str, port: int):
        super().__init__(
            f"port {port} on {host} is already in use (another mpsandbox, or the EventGate "
            f"devserver?). Stop it, or choose another port with --port {port + 1}."
        )
        self.host, self.port = host, port


def describe_network_failure(exc: BaseException, timeout: float | None = None) -> str:
    """A failed connection in a user's words ("could not connect to example.org:443:
    connection refused"), not a library's ("Cannot connect to host example.org:443
    ssl:default [Connect call failed ...]"). Works on aiohttp's and urllib's errors alike by
    looking at what they carry, so this module needs neither."""
    import socket
    import ssl

    if isinstance(exc, TimeoutError) or type(exc).__name__ in ("ServerTimeoutError",):
        return f"no answer within {timeout:g} s" if timeout else "timed out"
    cause = getattr(exc, "reason", None) or getattr(exc, "os_error", None) or exc
    where = ""
    host, port = getattr(exc, "host", None), getattr(exc, "port", None)
    if host:
        where = f" to {host}:{port}" if port else f" to {host}"
    if isinstance(cause, TimeoutError):
        return f"no answer within {timeout:g} s" if timeout else "timed out"
    if isinstance(cause, socket.gaierror):
        return f"could not connect{where}: the name does not resolve (offline?)"
    if isinstance(cause, ConnectionRefusedError):
        return f"could not connect{where}: connection refused (nothing listening)"
    if isinstance(cause, ssl.SSLError | ssl.CertificateError):
        return f"could not connect{where}: the TLS handshake failed ({cause.__class__.__name__})"
    if isinstance(cause, OSError) and cause.strerror:
        return f"could not connect{where}: {cause.strerror.lower()}"
    if type(exc).__name__ == "ServerDisconnectedError":
        return "the server closed the connection without an answer"
    text = str(cause) or type(cause).__name__
    return text.splitlines()[0][:200]
