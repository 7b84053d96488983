"""The chaos setting over HTTP (the recorded requests, where chaos shows, are in
inspect_routes.py).

- ``GET /sandbox/chaos``: the setting (``on``, ``spec``, ``settings``, ``description``,
  ``set_by``, ``set_at``, ``revision``), what it did to this intake's requests so far
  (``counts``), and the spec grammar.
- ``PUT /sandbox/chaos`` with the settings as JSON (``{"503": 0.2, "latency_ms": [50, 400],
  "seed": 7}``, any subset of GET's ``settings``) or ``{"spec": "503:0.2,latency:200ms"}``
  (``"off"`` turns it off); optional ``"set_by"``: ``api`` (default) or ``tui``. Applies at
  once; 400 naming the problem when the setting is wrong.
- ``DELETE /sandbox/chaos``: off.

Chaos itself never applies here: only POSTs on intake paths are subject to it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mpsandbox import jsonio
from mpsandbox.chaos import EXAMPLES, GRAMMAR, ChaosError, ChaosSettings, parse_spec
from mpsandbox.intake.eventgate_routes import SANDBOX_KEY
from mpsandbox.intake.inspect_routes import json_ok
from mpsandbox.store import StoreError


def _json(data: Any, status: int = 200) -> web.Response:
    # The setting changes under the client's feet: never cached.
    return json_ok(data, status, headers={"cache-control": "no-cache"})


def _problem(status: int, title: str, detail: str) -> web.Response:
    return _json({"status": status, "title": title, "detail": detail}, status=status)


def _summary(request: web.Request, **extra: Any) -> dict[str, Any]:
    sandbox = request.app[SANDBOX_KEY]
    data = sandbox.chaos_summary()
    data["grammar"] = GRAMMAR
    data["examples"] = [{"spec": spec, "meaning": meaning} for spec, meaning in EXAMPLES]
    data.update(extra)
    return data


async def get_chaos(request: web.Request) -> web.Response:
    await request.app[SANDBOX_KEY].refresh_chaos_async()
    return _json(_summary(request))


async def _store(request: web.Request, settings: ChaosSettings | None, set_by: str):
    sandbox = request.app[SANDBOX_KEY]
    try:
        change = await sandbox.set_chaos(settings, set_by)  # in force for the next request
    except StoreError as exc:
        return _problem(503, "store error", str(exc))
    return _json(_summary(request, previous=change["previous"]))


async def put_chaos(request: web.Request) -> web.Response:
    try:
        body = jsonio.loads(await request.read())
    except ValueError:
        return _problem(400, "bad body", 'send JSON: chaos settings or {"spec": "503:0.2"}')
    if not isinstance(body, dict):
        return _problem(400, "bad body", 'send a JSON object: settings or {"spec": ...}')
    body = dict(body)
    set_by = body.pop("set_by", "api")
    if set_by not in ("api", "tui"):
        return _problem(400, "bad body", f'set_by must be "api" or "tui"; got {set_by!r}')
    try:
        if "spec" in body:
            if len(body) > 1:
                raise ChaosError("give either spec or the settings, not both")
            settings = parse_spec(body["spec"])
        else:
            settings = ChaosSettings.from_json(body)
    except ChaosError as exc:
        return _problem(400, "bad chaos setting", f"{exc}. Grammar: {GRAMMAR}")
    return await _store(request, settings, set_by)


async def delete_chaos(request: web.Request) -> web.Response:
    return await _store(request, None, "api")
