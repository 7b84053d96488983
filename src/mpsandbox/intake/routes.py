"""Every route of the intake's HTTP server, in one table (as Datasette's ``_routes()``).

The handlers live in the modules their names promise: EventGate's protocol
(``eventgate_routes``), legacy beacons (``beacon_routes``), the inspection API
(``inspect_routes``), stream configs as MediaWiki and EventGate serve them
(``stream_config_routes``), local overrides and the sampling what-if (``override_routes``),
Test Kitchen's API (``testkitchen_routes``), re-validation (``revalidation_routes``) and chaos
(``chaos_routes``). Which routes answer any origin is the exposure policy's business
(``exposure.py``), not this table's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from mpsandbox.config import Settings
from mpsandbox.intake import (
    beacon_routes,
    chaos_routes,
    eventgate_routes,
    inspect_routes,
    override_routes,
    revalidation_routes,
    stream_config_routes,
    testkitchen_routes,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler


def routes(settings: Settings) -> list[Route]:
    """The table: method, path, handler. Intake and beacon paths come from the settings;
    EventGate's routes also answer with a trailing slash (Express's non-strict routing)."""
    eg, ins = eventgate_routes, inspect_routes
    table: list[Route] = []
    for path in dict.fromkeys(p for base in settings.intake_paths for p in eg.with_slash(base)):
        table += [Route("POST", path, eg.post_events), Route("OPTIONS", path, eg.options)]
    table += [Route("GET", p, eg.test_events) for p in eg.with_slash("/v1/_test/events")]
    table += [Route("GET", p, eg.info) for p in eg.with_slash("/_info")]
    table += [Route("GET", "/", eg.root), Route("GET", "/robots.txt", eg.robots)]
    for path in dict.fromkeys(settings.beacon_paths):
        table += [Route("GET", path, beacon_routes.beacon)]
        table += [Route("POST", path, beacon_routes.beacon)]
    table += [
        Route("GET", "/sandbox/events", ins.list_events),
        Route("GET", "/sandbox/events/{id}", ins.get_event),
        Route("GET", "/sandbox/errors", ins.list_errors),
        Route("GET", "/sandbox/requests", ins.list_requests),
        Route("GET", "/sandbox/requests/{id}", ins.get_request),
        Route("GET", "/sandbox/stats", ins.stats),
        Route("POST", "/sandbox/reset", ins.reset),
        Route("GET", "/sandbox/wait", ins.wait),
        Route("GET", "/sandbox/schemas/resolve", ins.resolve_schema),
        Route("GET", "/sandbox/openapi.json", ins.openapi),
        Route("GET", "/readyz", ins.readyz),
        Route("GET", "/w/api.php", stream_config_routes.api_php),
        Route("GET", "/v1/stream-configs", stream_config_routes.eventgate_stream_configs),
        Route("GET", "/v1/stream-configs/{streams}", stream_config_routes.eventgate_stream_configs),
        Route("GET", "/sandbox/overrides", override_routes.get_overrides),
        Route("PUT", "/sandbox/overrides", override_routes.put_override),
        Route("DELETE", "/sandbox/overrides", override_routes.delete_overrides),
        Route("POST", "/sandbox/overrides/revert", override_routes.revert_override),
        Route("GET", "/sandbox/whatif/sampling", override_routes.whatif_sampling),
        Route("GET", "/api/v1/experiments", testkitchen_routes.tk_experiments),
        Route("GET", "/api/v1/instruments", testkitchen_routes.tk_instruments),
        Route("POST", "/sandbox/revalidate", revalidation_routes.revalidate),
        Route("GET", "/sandbox/flips", revalidation_routes.flips),
        Route("GET", "/sandbox/revalidations", revalidation_routes.runs),
        Route("GET", "/sandbox/events/{id}/working-copy", revalidation_routes.working_copy),
        Route("GET", "/sandbox/chaos", chaos_routes.get_chaos),
        Route("PUT", "/sandbox/chaos", chaos_routes.put_chaos),
        Route("DELETE", "/sandbox/chaos", chaos_routes.delete_chaos),
    ]
    return table


def add_routes(app: web.Application, settings: Settings) -> None:
    """Register the table on ``app`` (a GET answers HEAD too)."""
    for route in routes(settings):
        if route.method == "GET":
            app.router.add_get(route.path, route.handler)
        else:
            app.router.add_route(route.method, route.path, route.handler)
