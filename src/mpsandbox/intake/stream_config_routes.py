"""Stream configs served from the intake, so a dev wiki or an app build can take its config
from the sandbox (with local sample-rate overrides applied):

- ``GET /w/api.php?action=streamconfigs&format=json[&streams=a|b][&constraints=k=v|...]``,
  answered as MediaWiki's EventStreamConfig extension does (``ApiStreamConfigs.php``):
  ``{"streams": {...}}`` in JSON format version 2, every setting of each stream plus
  ``stream`` and ``topics``, unknown streams left out, ``all_settings`` accepted and ignored
  (the extension deprecated it and always returns every setting).
- ``GET /v1/stream-configs[/{streams}]``, eventgate-wikimedia's inspection route: a plain
  ``{name: settings}`` map of the requested streams (comma or pipe separated; every
  configured key without a list), unknown streams left out. Like eventgate-wikimedia
  without ``stream_config_uri``, the route answers 404 when no stream config is loaded.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from mpsandbox import jsonio
from mpsandbox.intake.eventgate_routes import SANDBOX_KEY
from mpsandbox.platform.stream_configs import StreamConfigs, parse_constraints, split_multi

#: eventgate-wikimedia splits the streams path parameter on "," or "|".
_STREAMS_SEPARATOR = re.compile(r"[,|]")
_NO_STORE = {"cache-control": "no-cache"}


def _json(data: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=200,
        body=jsonio.dumps(data),
        content_type="application/json",
        charset="utf-8",
        headers={**_NO_STORE, **(headers or {})},
    )


async def _configs(request: web.Request) -> tuple[StreamConfigs | None, dict[str, float]]:
    sandbox = request.app[SANDBOX_KEY]
    # An override set a moment ago by the CLI (another process) is served at once.
    await sandbox.refresh_overrides_async()
    return sandbox.stream_configs, sandbox.stream_rate_overrides


API_HELP = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>MediaWiki API help "
    "(mpsandbox)</title></head><body><h1>api.php (mpsandbox)</h1><p>mpsandbox answers one "
    "action of the MediaWiki Action API: <code>action=streamconfigs</code> (parameters "
    "<code>streams</code>, <code>constraints</code>, <code>all_settings</code>), e.g. "
    "<a href='?action=streamconfigs&amp;format=json'>?action=streamconfigs&amp;format=json"
    "</a>.</p></body></html>"
)


async def api_php(request: web.Request) -> web.Response:
    """MediaWiki's api.php, for ``action=streamconfigs`` only."""
    action = request.query.get("action")
    if action is None:
        # MediaWiki's default action is "help", which answers its HTML help page.
        return web.Response(status=200, text=API_HELP, content_type="text/html")
    if action != "streamconfigs":
        # An API error: HTTP 200, the error in the body (format version 1, as MediaWiki's
        # default JSON printer) and the MediaWiki-API-Error header.
        url = f"{request.scheme}://{request.host}/w/api.php"
        body = {
            "error": {
                "code": "badvalue",
                "info": f'Unrecognized value for parameter "action": {action}.',
                "*": f"See {url} for API usage. mpsandbox answers only action=streamconfigs.",
            },
            "servedby": "mpsandbox",
        }
        return _json(body, headers={"MediaWiki-API-Error": "badvalue"})
    configs, overrides = await _configs(request)
    streams = None
    if "streams" in request.query:
        streams = [s for s in split_multi(request.query["streams"]) if s]
    constraints = None
    if request.query.get("constraints"):
        constraints = parse_constraints(split_multi(request.query["constraints"])) or None
    if configs is None:
        return _json({"streams": {}})
    return _json(configs.as_api(streams, constraints, rate_overrides=overrides))


async def eventgate_stream_configs(request: web.Request) -> web.Response:
    """eventgate-wikimedia's ``GET /v1/stream-configs/:streams?``."""
    configs, overrides = await _configs(request)
    if configs is None:
        # eventgate-wikimedia adds the route only with stream configs: Express's 404
        from mpsandbox.intake.app import EXPRESS_404

        return web.Response(
            status=404,
            text=EXPRESS_404.format(method=request.method, path=request.path),
            content_type="text/html",
        )
    raw = request.match_info.get("streams")
    streams = [s for s in _STREAMS_SEPARATOR.split(raw) if s] if raw else None
    return _json(configs.select(streams, rate_overrides=overrides))
