"""Shared fixtures: real servers on loopback, real SQLite files, the real reference data."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from mpsandbox.config import Settings
from mpsandbox.intake.server import RunningServer, start_server

ROOT = Path(__file__).resolve().parents[1]
#: The reference data (tests/data/README.md): real schemas, recorded EventGate exchanges.
WM = ROOT / "tests" / "data"
SECONDARY = WM / "schemas" / "secondary" / "jsonschema"
PRIMARY = WM / "schemas" / "primary" / "jsonschema"
RECORDED = WM / "eventgate" / "recorded-local-run"

#: The configuration of the recorded EventGate run (see tests/data/eventgate/PROVENANCE.md).
RECORDED_TEST_EVENT = {
    "$schema": "/test/event/1.0.0",
    "meta": {"stream": "eventgate-devserver.test.event", "dt": "2024-01-01T00:00:00Z"},
}


def settings_for(tmp_path: Path, **changes) -> Settings:
    base = Settings(
        host="127.0.0.1",
        port=0,
        db=tmp_path / "sandbox.db",
        schema_dirs=(SECONDARY, PRIMARY),
        cache_dir=tmp_path / "cache",
        watch_schemas=False,
    )
    return base.with_(**changes)


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[Callable]:
    """Start real intakes on free loopback ports; all are stopped (and flushed) at teardown."""
    started: list[RunningServer] = []

    async def factory(**changes) -> RunningServer:
        server = await start_server(settings_for(tmp_path, **changes))
        started.append(server)
        return server

    yield factory
    for server in started:
        with contextlib.suppress(Exception):
            await server.stop()


@pytest.fixture
async def server(make_server) -> RunningServer:
    return await make_server()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session
