"""Legacy EventLogging beacons: ``GET`` and ``POST`` on ``/beacon/event`` (and every
``--beacon-path``), from any origin, answered as production's edge answers them.

Production's caches answer every request under ``/beacon/`` with ``204 No Content`` and an
empty body, whatever the query, and log it for later processing (EventLogging's
``examples/varnish.vcl`` shows the rule), so the sandbox does the same: the client can
never tell a good beacon from a bad one, and neither can MediaWiki's HTTP client, which
otherwise logs "There was a problem during the HTTP request: 404 Not Found" on every save.
What the sandbox adds is everything production keeps quiet: the request is recorded as
received, and its capsule decoded into an event with verdict ``legacy`` (see
:mod:`mpsandbox.legacy`), or, when the query is not a capsule, the reason is recorded.

Origin policy: these routes accept any origin, as the EventGate intake routes do (a
beacon is a no-cors request). Whoever adds a Host/Origin guard or a CORS policy must treat
``Settings.beacon_paths`` like ``Settings.intake_paths``.
"""

from __future__ import annotations

import time

from aiohttp import web

from mpsandbox import legacy
from mpsandbox.intake import eventgate_routes, submit


def raw_query(raw_path: str) -> str:
    """The query string exactly as sent (percent-escapes kept): the capsule's encoding is
    part of what is judged."""
    return raw_path.partition("?")[2]


async def beacon(request: web.Request) -> web.StreamResponse:
    sandbox = request.app[eventgate_routes.SANDBOX_KEY]
    now = time.time()
    request_id = eventgate_routes._request_id(request)
    raw, too_large = await eventgate_routes._read_body(request, sandbox.settings.max_body)
    req = submit.Incoming(
        method=request.method,
        path=request.path,
        query=raw_query(request.raw_path),
        headers=request.headers,
        raw_headers=eventgate_routes._raw_headers(request),
        body=raw,
        too_large=too_large,
        received_at=now,
        request_id=request_id,
        uri=request.raw_path,
        remote=request.remote,
    )
    handled = await submit.handle_beacon(sandbox, req)
    if handled.status == legacy.BEACON_STATUS:
        return web.Response(status=handled.status, reason=handled.reason)
    return eventgate_routes._respond(handled)
