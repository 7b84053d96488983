"""Write an SVG of every screen into screenshots/, from the fixed fixture data.

Run through ``scripts/screenshots`` (it sets up the environment first). The pictures are
the same scenarios the snapshot tests check (tests/tui_scenarios.py).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.tui_fixture import build_fixture_db, use_utc  # noqa: E402
from tests.tui_scenarios import PLATFORM, SCENARIOS, SIZE, make_app  # noqa: E402


async def shoot(out: Path) -> list[Path]:
    use_utc()
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        fixture = Path(tmp) / "fixture.db"
        build_fixture_db(fixture)
        platform_fixture = Path(tmp) / "platform.db"
        build_fixture_db(platform_fixture, platform=True)
        for name, scenario in SCENARIOS.items():
            work = Path(tmp) / name
            work.mkdir()
            platform = name in PLATFORM
            app = make_app(platform_fixture if platform else fixture, work, platform=platform)
            async with app.run_test(size=SIZE) as pilot:
                await scenario(pilot)
                path = out / f"{name}.svg"
                path.write_text(app.export_screenshot(title=f"mpsandbox: {name}"))
                written.append(path)
    return written


def main() -> None:
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    for path in asyncio.run(shoot(out)):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
