"""Shared fixtures: real servers on loopback, real SQLite files, the real reference data."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

# No test reaches schema.wikimedia.org: remote schemas are off for this process and every
# process it starts (a test that wants a remote serves one on loopback: ``schema_host``),
# and fetched schemas go to a cache of the test run's own. Set before anything builds a
# Settings, whose defaults read these.
os.environ["MPSANDBOX_OFFLINE"] = "1"
os.environ.pop("MPSANDBOX_REMOTE_SCHEMAS", None)
os.environ["MPSANDBOX_CACHE"] = tempfile.mkdtemp(prefix="mpsandbox-test-cache-")

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


#: How a checkout stores version links (`latest`, `1.0.0` -> `1.0.0.yaml`): real symlinks,
#: as `git clone` of the schema repositories gives, or one-line files holding the target,
#: as `git clone -c core.symlinks=false` (or a system without symlinks) writes them.
LINK_CONVENTIONS = ("symlinks", "files")


def copy_schemas(dst: Path, links: str = "symlinks") -> Path:
    """A writable copy of tests/data/schemas (primary/ and secondary/) at ``dst``, its
    version links stored the ``links`` way (see LINK_CONVENTIONS)."""
    assert links in LINK_CONVENTIONS
    shutil.copytree(WM / "schemas", dst, symlinks=True)
    for path in [dst, *dst.rglob("*")]:
        if path.is_symlink():
            if links == "files":
                target = os.readlink(path)
                path.unlink()
                path.write_text(target)
        else:
            path.chmod(path.stat().st_mode | 0o200)
    return dst


def link_target(path: Path) -> str:
    """What a version link names, whichever way it is stored."""
    return os.readlink(path) if path.is_symlink() else path.read_text().strip()


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


@pytest.fixture(autouse=True)
def _own_schema_cache(tmp_path_factory, monkeypatch):
    """Each test its own schema cache, so one test's fetches never answer another's."""
    monkeypatch.setenv("MPSANDBOX_CACHE", str(tmp_path_factory.mktemp("schema-cache")))


@dataclass
class SchemaHost:
    """A loopback stand-in for schema.wikimedia.org serving tests/data's repositories."""

    root: str
    runner: web.AppRunner
    hits: list[str] = field(default_factory=list)

    @property
    def bases(self) -> tuple[str, str]:
        """The public pair's order: primary, then secondary."""
        return (f"{self.root}/primary/jsonschema", f"{self.root}/secondary/jsonschema")

    async def stop(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def schema_host() -> AsyncIterator[SchemaHost]:
    hits: list[str] = []

    @web.middleware
    async def count(request, handler):
        hits.append(request.path)
        return await handler(request)

    app = web.Application(middlewares=[count])
    app.router.add_static("/repositories/secondary/jsonschema", SECONDARY, follow_symlinks=True)
    app.router.add_static("/repositories/primary/jsonschema", PRIMARY, follow_symlinks=True)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    host = SchemaHost(f"http://127.0.0.1:{port}/repositories", runner, hits)
    yield host
    await runner.cleanup()
