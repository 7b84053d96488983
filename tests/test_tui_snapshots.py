"""Snapshot tests of every screen, on the fixed fixture database (read-only, UTC).

After an intended change, update the stored SVGs with
``.venv/bin/python -m pytest tests/test_tui_snapshots.py --snapshot-update``, look at the
report; the README's pictures are recorded separately, live, by ``scripts/screenshots``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui_fixture import build_fixture_db, use_utc
from tests.tui_scenarios import PLATFORM, SCENARIOS, SIZE, make_app


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory) -> Path:
    use_utc()
    path = tmp_path_factory.mktemp("snap") / "fixture.db"
    build_fixture_db(path)
    return path


@pytest.fixture(scope="module")
def platform_db(tmp_path_factory) -> Path:
    use_utc()
    path = tmp_path_factory.mktemp("snap-platform") / "fixture.db"
    build_fixture_db(path, platform=True)
    return path


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_screen(snap_compare, fixture_db, platform_db, tmp_path, name):
    platform = name in PLATFORM
    app = make_app(platform_db if platform else fixture_db, tmp_path, platform=platform)
    assert snap_compare(app, terminal_size=SIZE, run_before=SCENARIOS[name])
