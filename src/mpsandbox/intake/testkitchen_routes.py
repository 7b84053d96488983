"""Test Kitchen's configuration API, as its service answers a dev wiki.

- ``GET /api/v1/experiments``, ``GET /api/v1/instruments``: the experiments of
  ``--experiments`` and the instruments of ``--instruments`` in Test Kitchen's shapes, with
  the local overrides applied (see ``testkitchen.py`` for the shapes and how overrides show
  in them).
"""

from __future__ import annotations

from aiohttp import web

from mpsandbox.intake.inspect_routes import in_thread
from mpsandbox.intake.override_routes import _json, _overrides, _problem
from mpsandbox.testkitchen import (
    InstrumentsError,
    experiment_rows,
    instrument_rows,
    load_instruments,
)


async def tk_experiments(request: web.Request) -> web.Response:
    sandbox, overrides = _overrides(request)
    await sandbox.refresh_overrides_async()
    groups = await in_thread(overrides.experiment_groups)
    return _json(experiment_rows(sandbox.experiments, groups))


async def tk_instruments(request: web.Request) -> web.Response:
    sandbox, _ = _overrides(request)
    await sandbox.refresh_overrides_async()
    try:
        rows = await in_thread(load_instruments, sandbox.settings.instruments)
    except InstrumentsError as exc:
        return _problem(500, "instruments cannot be served", str(exc))
    return _json(instrument_rows(rows, sandbox.stream_rate_overrides))
