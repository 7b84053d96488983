"""Local overrides over HTTP, and the sampling what-if (Test Kitchen's configuration API,
which shows the overrides, is in testkitchen_routes.py).

- ``GET /sandbox/overrides``: every override, the ``mpo`` string, the dev wiki URL (with
  ``--wiki-url``), rate overrides, flags, and the newest changes (``history``).
- ``PUT /sandbox/overrides`` with ``{"kind", "key", "value"}`` (optional ``"set_by"``:
  ``api``, the default, or ``tui``): set one; 400 naming the problem when invalid.
- ``DELETE /sandbox/overrides?kind=K&key=NAME``: remove one (404 when there is none);
  ``?kind=K`` removes every override of a kind; no parameters remove all (one step, and
  ``POST /sandbox/overrides/revert`` brings them back).
- ``POST /sandbox/overrides/revert``: undo the newest change not yet undone.
- ``GET /sandbox/whatif/sampling?stream=S&rate=R[&unit=U]``: see ``whatif.py``.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from mpsandbox import jsonio
from mpsandbox.intake.eventgate_routes import SANDBOX_KEY
from mpsandbox.intake.inspect_routes import in_thread, json_ok
from mpsandbox.overrides import KINDS, OverrideError
from mpsandbox.store import StoreError


def _json(data: Any, status: int = 200) -> web.Response:
    # Overrides change under the client's feet: never cached.
    return json_ok(data, status, headers={"cache-control": "no-cache"})


def _problem(status: int, title: str, detail: str) -> web.Response:
    return _json({"status": status, "title": title, "detail": detail}, status=status)


def _overrides(request: web.Request):
    sandbox = request.app[SANDBOX_KEY]
    if sandbox.overrides is None:
        raise web.HTTPServiceUnavailable(
            text=jsonio.dumps_str(
                {"status": 503, "title": "store not open", "detail": "the store is not open"}
            ),
            content_type="application/json",
        )
    return sandbox, sandbox.overrides


async def _summary(request: web.Request, **extra: Any) -> web.Response:
    sandbox, overrides = _overrides(request)
    await sandbox.refresh_overrides_async()
    data = await in_thread(overrides.summary)
    data["history"] = await in_thread(overrides.history, 20)
    data.update(extra)
    return _json(data)


async def _write(request: web.Request, change: str, *args: Any, set_by: str = "api") -> Any:
    """One change of the overrides (see Sandbox.change_overrides), or the problem answer."""
    sandbox, _ = _overrides(request)
    try:
        # the served stream configs follow at once
        return await sandbox.change_overrides(change, *args, set_by=set_by)
    except OverrideError as exc:
        raise web.HTTPBadRequest(
            text=jsonio.dumps_str({"status": 400, "title": "bad override", "detail": str(exc)}),
            content_type="application/json",
        ) from None
    except StoreError as exc:
        raise web.HTTPServiceUnavailable(
            text=jsonio.dumps_str({"status": 503, "title": "store error", "detail": str(exc)}),
            content_type="application/json",
        ) from None


async def get_overrides(request: web.Request) -> web.Response:
    return await _summary(request)


async def put_override(request: web.Request) -> web.Response:
    _overrides(request)  # 503 while the store is not open
    try:
        body = jsonio.loads(await request.read())
    except ValueError:
        return _problem(400, "bad body", 'send JSON: {"kind": ..., "key": ..., "value": ...}')
    if not isinstance(body, dict) or not {"kind", "key", "value"} <= set(body):
        return _problem(
            400, "bad body", 'send a JSON object with "kind", "key" and "value" (any JSON)'
        )
    set_by = body.get("set_by", "api")
    if set_by not in ("api", "tui"):
        return _problem(400, "bad body", f'set_by must be "api" or "tui"; got {set_by!r}')
    change = await _write(request, "set", body["kind"], body["key"], body["value"], set_by=set_by)
    return await _summary(request, **change)


async def delete_overrides(request: web.Request) -> web.Response:
    _overrides(request)  # 503 while the store is not open
    kind = request.query.get("kind") or None
    key = request.query.get("key") or None
    if key is not None and kind is None:
        return _problem(400, "bad parameter", "give kind= with key=")
    if kind is not None and kind not in KINDS:
        return _problem(400, "bad parameter", f"kind must be one of {', '.join(KINDS)}")
    if key is not None:
        removed = await _write(request, "delete", kind, key)
        if removed is None:
            return _problem(404, "no such override", f"no {kind} override {key!r}")
        return await _summary(request, removed=[removed])
    removed = await _write(request, "clear", kind)
    return await _summary(request, removed=removed)


async def revert_override(request: web.Request) -> web.Response:
    reverted = await _write(request, "revert_last")
    return await _summary(request, reverted=reverted)


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not math.isfinite(rate) or not 0 <= rate <= 1:
        raise web.HTTPBadRequest(
            text=jsonio.dumps_str(
                {
                    "status": 400,
                    "title": "bad parameter",
                    "detail": f"rate must be in 0..1: {text!r}",
                }
            ),
            content_type="application/json",
        )
    return rate


async def whatif_sampling(request: web.Request) -> web.Response:
    """How many captured ids would be in sample at a rate, by the web and app rules."""
    from mpsandbox.whatif import UNITS, sampling_whatif  # this route's alone

    sandbox, _ = _overrides(request)
    await sandbox.refresh_overrides_async()
    q = request.query
    stream = q.get("stream") or None
    configs = sandbox.stream_configs
    sample = None
    if stream is not None and configs is not None:
        settings = configs.get(stream)
        if isinstance(settings, dict) and isinstance(settings.get("sample"), dict):
            sample = settings["sample"]
    unit = q.get("unit") or (sample or {}).get("unit")
    if stream is None and not q.get("unit"):
        return _problem(400, "bad parameter", "give stream= (and/or unit=)")
    if unit not in UNITS:
        why = (
            f"unit must be one of {', '.join(UNITS)}; got {unit!r}"
            if unit is not None
            else f"stream {stream!r} has no sample.unit in the stream configs; give unit="
        )
        return _problem(400, "bad parameter", why)
    configured = (sample or {}).get("rate")
    override = None
    if stream is not None:
        overrides = sandbox.stream_rate_overrides
        override = overrides.get(stream)
        if override is None and configs is not None and (m := configs.match(stream)):
            override = overrides.get(m.key)
    if q.get("rate"):
        rate = _rate(q["rate"])
    elif override is not None:
        rate = override
    elif isinstance(configured, int | float) and not isinstance(configured, bool):
        rate = float(configured)
    else:
        return _problem(400, "bad parameter", "give rate= (the stream has no rate to assume)")

    def run() -> dict[str, Any]:
        from mpsandbox.store import connect

        conn = connect(sandbox.settings.db, readonly=True)
        try:
            return sampling_whatif(conn, unit=unit, rate=rate, stream=stream)
        finally:
            conn.close()

    result = await in_thread(run)
    return _json(
        {
            "stream": stream,
            "unit_from": "query" if q.get("unit") else "stream config",
            "configured_rate": configured,
            "override_rate": override,
            **result,
        }
    )
