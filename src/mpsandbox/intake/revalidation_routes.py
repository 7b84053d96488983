"""Re-validation over HTTP: judge stored events again now, and list what flipped.

- ``POST /sandbox/revalidate``: optional JSON body ``{"schemas": [TITLE, ...], "limit": N |
  "all"}`` (or the same as ``?schema=T&schema=U&limit=N``): judge the newest stored events of
  those schema titles (all titles when none are given) with the schemas as they are now;
  answers the run's report. The automatic runs after a schema file changes are the same.
- ``GET /sandbox/flips?run=N&event=ID&limit=&offset=``: verdict flips, newest first, each
  with the errors before and after.
- ``GET /sandbox/revalidations?limit=``: the runs, newest first.
- ``GET /sandbox/events/{id}/working-copy``: one stored event judged by the working copy
  (the unmaterialized ``current.yaml``) of its schema, to test an edit before materializing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mpsandbox import jsonio
from mpsandbox.intake.eventgate_routes import SANDBOX_KEY
from mpsandbox.intake.inspect_routes import BadParam, _int, in_thread, json_ok
from mpsandbox.store import MAX_LIMIT


def _limit(value: Any) -> int | str | None:
    if value is None or value == "":
        return "default"
    if isinstance(value, str) and value.lower() == "all":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadParam(f'limit must be a number of events or "all", got {value!r}')
    return _int(str(value), "limit", 1, 100_000_000)


async def revalidate(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    body: dict[str, Any] = {}
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            try:
                body = jsonio.loads(raw)
            except ValueError as exc:
                raise BadParam(f"the body is not JSON: {exc}") from None
            if not isinstance(body, dict):
                raise BadParam('the body must be an object like {"schemas": [...], "limit": N}')
    titles = body.get("schemas", request.query.getall("schema", None))
    if titles is not None and (
        not isinstance(titles, list) or not all(isinstance(t, str) and t for t in titles)
    ):
        raise BadParam("schemas must be a list of schema titles")
    titles = None if titles is None else [t.strip("/") for t in titles]
    limit = _limit(body.get("limit", request.query.get("limit")))
    report = await sandbox.revalidate(titles=titles, limit=limit, trigger="api")
    return json_ok(report.as_dict(with_flips=100))


async def flips(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    q = request.query
    run = _int(q["run"], "run", 1) if q.get("run") else None
    event = _int(q["event"], "event", 1) if q.get("event") else None
    limit = _int(q.get("limit", "100"), "limit", 0, MAX_LIMIT)
    offset = _int(q.get("offset", "0"), "offset", 0)
    rows = await in_thread(
        sandbox.reader.list_flips, run=run, event_id=event, limit=limit, offset=offset
    )
    return json_ok({"flips": rows})


async def runs(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    limit = _int(request.query.get("limit", "20"), "limit", 0, MAX_LIMIT)
    return json_ok({"runs": await in_thread(sandbox.reader.list_revalidations, limit)})


async def working_copy(request: web.Request) -> web.Response:
    """A stored event judged by the working copy (current.yaml) of its schema."""
    sandbox = request.app[SANDBOX_KEY]
    event_id = _int(request.match_info["id"], "id", 1)
    out = await sandbox.judge_by_working_copy(event_id)
    if out is None:
        raise web.HTTPNotFound(
            text=jsonio.dumps_str({"status": 404, "title": "no such event", "id": event_id}),
            content_type="application/json",
        )
    return json_ok(out)
