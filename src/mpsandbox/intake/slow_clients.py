"""Slow clients are closed after a bound, so that thousands of them cannot pin the server.

Two bounds, both ``Settings.read_timeout`` (``--read-timeout``, default 10 s):

* the headers: aiohttp closes a connection that has not sent a complete request within its
  keep-alive timeout of connecting or of its previous answer (``server.py`` passes
  ``keepalive_timeout``), which covers a slowloris trickling header lines and a connection
  that sends nothing;
* the body: aiohttp has no bound of its own once the headers are in, so
  :func:`body_deadline` answers ``408`` and closes the connection when a body has not fully
  arrived that long after its headers, whatever the handler (it may be blocked reading it).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\n\r\n%s"
)


def _close_if_unfinished(request: web.Request, timeout: float, fired: list[bool]) -> None:
    if request.content.is_eof():
        return
    transport = request.transport
    if transport is None or transport.is_closing():
        return
    fired.append(True)
    text = f"the request body did not arrive within {timeout:g} s (--read-timeout)\n".encode()
    transport.write(_TIMED_OUT % (len(text), text))
    transport.close()


def body_deadline(timeout: float):
    """A middleware closing a connection whose body is not in ``timeout`` s after its head."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        if not request.body_exists or request.content.is_eof():
            return await handler(request)
        fired: list[bool] = []
        timer = asyncio.get_running_loop().call_later(
            timeout, _close_if_unfinished, request, timeout, fired
        )
        try:
            return await handler(request)
        except ConnectionResetError:
            if not fired:
                raise
            # The handler was reading the body we cut off: already answered, nothing to log.
            return web.Response(status=408)
        finally:
            timer.cancel()

    return middleware
