"""The aiohttp application: EventGate's routes, the inspection API, and the headers on all."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from mpsandbox import __version__, jsonio
from mpsandbox.intake import eventgate_routes, routes
from mpsandbox.intake.exposure import Policy
from mpsandbox.intake.slow_clients import body_deadline
from mpsandbox.sandbox import Sandbox

log = logging.getLogger(__name__)

POLICY_KEY = web.AppKey("exposure_policy", Policy)

SECURITY_HEADERS = {
    "x-xss-protection": "1; mode=block",
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "content-security-policy": "default-src 'self'; object-src 'none'; media-src 'none'; "
    "img-src 'none'; style-src 'none'; base-uri 'self'; frame-ancestors 'self'",
}
EXPRESS_404 = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
    "</head>\n<body>\n<pre>Cannot {method} {path}</pre>\n</body>\n</html>\n"
)


@web.middleware
async def protocol_headers(request: web.Request, handler):
    """Every answer carries EventGate's security headers and the CORS headers of the
    server its route stands in for (exposure.py), errors included.

    A request from a host or origin the exposure policy refuses gets a one-line 403 before
    any handler runs. Unknown routes answer like Express ("Cannot GET /x"); an unexpected
    exception answers a 500 problem document and is logged, never tearing down the server.
    """
    policy = request.app[POLICY_KEY]
    try:
        refusal = policy.refusal(request.method, request.path, request.scheme, request.headers)
        if refusal is not None:
            raise web.HTTPForbidden(text=refusal + "\n")
        response = await handler(request)
    except web.HTTPException as exc:
        if (exc.status == 404 and not exc.body) or exc.status == 405:
            response = web.Response(
                status=404,
                text=EXPRESS_404.format(method=request.method, path=request.path),
                content_type="text/html",
            )
        else:
            response = web.Response(
                status=exc.status, reason=exc.reason, body=exc.body, headers=exc.headers
            )
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        log.exception("unhandled error for %s %s", request.method, request.path)
        response = web.Response(
            status=500,
            reason="Internal Server Error",
            body=jsonio.dumps(
                {
                    "status": 500,
                    "type": "internal_error",
                    "title": type(exc).__name__,
                    "detail": str(exc),
                    "method": request.method,
                    "uri": request.path_qs,
                }
            ),
            content_type="application/json",
        )
    for key, value in policy.cors_headers(request.path, request.query).items():
        response.headers[key] = value
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    response.headers["server"] = f"mpsandbox/{__version__}"
    rid = request.get(eventgate_routes.REQUEST_ID_KEY)
    if rid:
        response.headers["x-request-id"] = rid
    return response


def make_app(sandbox: Sandbox) -> web.Application:
    # Bodies are read by the handler with its own limit; aiohttp's cap is a backstop only.
    app = web.Application(
        middlewares=[body_deadline(sandbox.settings.read_timeout), protocol_headers],
        client_max_size=sandbox.settings.max_body * 4 + 1024,
    )
    app[eventgate_routes.SANDBOX_KEY] = sandbox
    settings = sandbox.settings
    # Legacy beacons come from any origin too, like the intake routes (exposure.py).
    app[POLICY_KEY] = Policy.for_settings(
        (*settings.intake_paths, *settings.beacon_paths), settings.allowed_hosts, settings.host
    )
    routes.add_routes(app, settings)
    return app
