"""Write an SVG of every screen into screenshots/, from a running demo-like session.

Run through ``scripts/screenshots`` (it sets up the environment first). Unlike the snapshot
tests (tests/tui_scenarios.py: a read-only app on fixed data, so that they compare), these
pictures show the product in use: the terminal UI with its intake listening, the demo's
simulator posting varied traffic to it (every producer, the labelled mistakes), a replay
run into it and a schema edited under it. Each run differs in its details.

The session lives in a scratch folder laid out like a stranger's machine and used as
``HOME``, so that the paths the screens show read ``~/src/schemas-event-secondary`` and
``~/mpsandbox/instruments`` rather than temporary or internal folders. Nothing leaves the
machine: the schemas are local copies of the reference repositories, remote schemas are
off, and the simulator posts to loopback.

The SVGs are rewritten to use locally installed monospace fonts (Textual's export loads
Fira Code from a CDN), so they render the same with no network.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The reference schema repositories the tests use (tests/data/schemas once copied there).
from tests.tui_fixture import WM  # noqa: E402

SIZE = (130, 40)
NARROW = (100, 32)
#: The simulator's pace while the pictures are taken (events per second offered).
RATE = 12.0
#: Events stored before the first picture, so every screen has something to show.
WARM_UP_EVENTS = 200

#: Fonts a reader's machine has, best first; the SVG's cells are laid out by coordinates,
#: so any monospace font lines up.
FONT_STACK = (
    'ui-monospace, "Cascadia Code", "Fira Code", "SF Mono", Menlo, Consolas, '
    '"DejaVu Sans Mono", "Liberation Mono", monospace'
)
_FONT_FACE = re.compile(r"[ \t]*@font-face\s*\{[^}]*\}\s*\n?")
_MATRIX_FONT = re.compile(r"(font-family:\s*)Fira Code,\s*monospace;")
_TITLE_FONT = re.compile(r"(font-family:\s*)arial;")


def local_fonts(svg: str) -> str:
    """``svg`` without the web fonts Textual's export references: no ``@font-face`` with
    CDN URLs, and the terminal text set in a local monospace stack."""
    svg = _FONT_FACE.sub("", svg)
    svg = _MATRIX_FONT.sub(lambda m: m.group(1) + FONT_STACK + ";", svg)
    svg = _TITLE_FONT.sub(lambda m: m.group(1) + "system-ui, Arial, sans-serif;", svg)
    if re.search(r"url\(\s*['\"]?https?://", svg):
        raise RuntimeError("the screenshot still references a web font; see local_fonts()")
    return svg


# -- a stranger's machine, in a scratch folder ----------------------------------------------


def _writable(tree: Path) -> None:
    """Copies of read-only reference data made writable (the flips picture edits one)."""
    for path in [tree, *tree.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def lay_out(home: Path) -> dict[str, Path]:
    """Schema clones under ~/src, a checkout's instruments, demo configs and library under
    ~/mpsandbox, as ``./start demo --schemas ...`` would find them."""
    paths = {}
    for name in ("secondary", "primary"):
        clone = home / "src" / f"schemas-event-{name}"
        shutil.copytree(WM / "schemas" / name / "jsonschema", clone / "jsonschema", symlinks=True)
        _writable(clone)
        paths[name] = clone
    checkout = home / "mpsandbox"
    shutil.copytree(ROOT / "instruments", checkout / "instruments")
    demo = checkout / "src/mpsandbox/simulate/demo_config"
    shutil.copytree(ROOT / "src/mpsandbox/simulate/demo_config", demo)
    shutil.copytree(ROOT / "schemas", checkout / "schemas", symlinks=True)
    _writable(checkout)
    paths |= {
        "checkout": checkout,
        "instruments": checkout / "instruments",
        "streams": demo / "streams.yaml",
        "experiments": demo / "experiments.yaml",
        "library": checkout / "schemas",
        "db": home / ".local/share/mpsandbox/mpsandbox.db",
    }
    paths["db"].parent.mkdir(parents=True)
    return paths


def pick_port() -> int:
    """8192, as a reader would see it, unless something already listens there."""
    for port in (8192, 0):
        with socket.socket() as s:
            # As the intake binds (aiohttp reuses addresses): a port left in TIME_WAIT by
            # an earlier run is free.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def settings_for(paths: dict[str, Path], port: int):
    from mpsandbox.cli.simulate import demo_settings

    opts = {
        "port": port,
        "db": paths["db"],
        # The clones first, then the checkout's library (the demo's experiment stream uses
        # its stand-in schema), in place of the built-ins so it shows under ~ too.
        "schema_dirs": (paths["secondary"], paths["primary"], paths["library"]),
        "no_builtin_schemas": True,
        "offline": True,
        "stream_config": str(paths["streams"]),
        "experiments_file": str(paths["experiments"]),
        "instruments": str(paths["instruments"]),
    }
    settings = demo_settings(opts)
    from dataclasses import replace

    # No remote repository: nothing leaves the machine, whatever the defaults are.
    return replace(settings, remote_schemas=())


# -- taking the pictures ------------------------------------------------------------------


async def settle(pilot, condition: Callable[[], object] = lambda: True, timeout=30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the screen did not settle")
        await pilot.pause(0.1)
    await pilot.pause(0.6)  # a refresh or two, so ev/s and the rows are current
    await pilot.wait_for_scheduled_animations()


def _table(app):
    from mpsandbox.tui.widgets.event_table import EventTable

    tables = app.screen.query(EventTable)
    return tables.first() if tables else None


def _rows(app) -> bool:
    table = _table(app)
    return table is not None and table.total > 0 and table.row_at(0) is not None


class Camera:
    def __init__(self, out: Path):
        self.out = out
        self.written: list[Path] = []

    def shoot(self, app, name: str) -> None:
        path = self.out / f"{name}.svg"
        path.write_text(local_fonts(app.export_screenshot(title=f"mpsandbox: {name}")))
        self.written.append(path)
        print(path.relative_to(ROOT), flush=True)


async def go(pilot, mode: str) -> None:
    """Switch screens the way the number keys do, whatever has the focus (a key pressed
    in a text field would be typed into it)."""
    await pilot.app.run_action(f"switch_mode({mode!r})")
    await pilot.pause(0.1)


async def home_screen(pilot) -> None:
    """Back to the Live list, unfiltered, following the newest events."""
    if pilot.app.screen.is_modal:
        pilot.app.pop_screen()
    await go(pilot, "live")
    await pilot.press("escape")  # an open event detail gives the list back
    await pilot.press("slash", "ctrl+u", "enter")
    await settle(pilot, lambda: _rows(pilot.app))
    _table(pilot.app).action_follow()
    await settle(pilot, lambda: _table(pilot.app).following and _rows(pilot.app))


async def live_session(camera: Camera, paths: dict[str, Path], port: int) -> None:
    from mpsandbox.cli.simulate import start_simulator, stop_simulator
    from mpsandbox.tui.app import MpSandboxApp

    settings = settings_for(paths, port)
    url = f"http://127.0.0.1:{port}/v1/events"
    app = MpSandboxApp(settings, listen=True)
    configs = {
        "stream_config": settings.stream_config,
        "experiments_file": settings.experiments_file,
        "instruments": settings.instruments,
    }
    sims = [start_simulator(url, rate=RATE, **configs)]
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.status.listening, 60)
            await post_recorded(url)
            await settle(pilot, lambda: sum(app.status.counts.values()) >= WARM_UP_EVENTS, 120)
            await settle(pilot, lambda: app.status.rate > 0 and _rows(app))
            # A second visitor's traffic with its own labelled mistakes, so that the Live
            # screen shows them among the clean events.
            sims.append(start_simulator(url, rate=RATE / 2, **configs))
            # The Live picture is taken as its invalid event arrives (the list follows the
            # newest, so it scrolls out of sight within seconds).
            invalid = app.status.counts.get("invalid", 0)
            await settle(pilot, lambda: app.status.counts.get("invalid", 0) > invalid, 60)
            for name, scene in SCENES:
                await scene(pilot, paths)
                assert app.status.listening and not app.status.read_only
                camera.shoot(app, name)
                await home_screen(pilot)
            await pilot.resize_terminal(*NARROW)
            await settle(pilot, lambda: app.status.rate > 0 and _rows(app))
            camera.shoot(app, "live-100")
            await pilot.resize_terminal(*SIZE)
            await settle(pilot)
            # Last, as it changes what every later event is judged by.
            await flips(pilot, paths)
            camera.shoot(app, "flips")
    finally:
        for sim in sims:
            stop_simulator(sim)
        app.shutdown_intake()


#: Requests recorded from a real EventGate run (tests/data/eventgate): an instrument in
#: progress, with the mistakes the simulator does not make (wrong types, a bad format, a
#: schema that does not exist), so the Errors screen has more than one group.
RECORDED = (
    "invalid_web_base.json",
    "batch_all_invalid.json",
    "format_and_coercion.json",
    "missing_meta_dt.json",
    "unknown_schema.json",
)


async def post_recorded(url: str) -> None:
    import aiohttp

    folder = WM / "eventgate/recorded-local-run/req"
    async with aiohttp.ClientSession() as http:
        for name in RECORDED:
            body = (folder / name).read_bytes()
            headers = {"content-type": "application/json"}
            async with http.post(url, data=body, headers=headers) as answer:
                await answer.read()


async def port_taken(camera: Camera, paths: dict[str, Path], port: int) -> None:
    """The same store opened while something else holds the port: the banner."""
    from mpsandbox.tui.app import MpSandboxApp

    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        app = MpSandboxApp(settings_for(paths, port), listen=True)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await settle(pilot, lambda: app.status.port_problem and _rows(app), 60)
                camera.shoot(app, "port-taken")
        finally:
            app.shutdown_intake()


# -- the scenes -----------------------------------------------------------------------------


async def live(pilot, paths) -> None:
    await settle(pilot, lambda: _rows(pilot.app))


async def live_filtered(pilot, paths) -> None:
    await pilot.press("slash", *"has:finding", "enter")
    await settle(pilot, lambda: _rows(pilot.app))
    await pilot.press("down")
    await settle(pilot)


async def detail(pilot, paths) -> None:
    from tests.tui_scenarios import shown_detail

    await pilot.press("slash", *"is:invalid", "enter")
    await settle(pilot, lambda: _rows(pilot.app))
    await pilot.press("enter")
    await settle(pilot, lambda: shown_detail(pilot.app) is not None)


async def errors(pilot, paths) -> None:
    await go(pilot, "errors")
    groups = pilot.app.screen.query_one("#error-groups")
    await settle(pilot, lambda: groups.row_count > 0)
    await pilot.press("enter")
    await settle(pilot, lambda: pilot.app.screen.query_one("#group-events").table.total)


async def schemas(pilot, paths) -> None:
    # What clients send today and the public mirror lacks: the probe says where it looked.
    await go(pilot, "schemas")
    await pilot.press("slash", *"/analytics/product_metrics/web/base/2.1.0", "enter")
    screen = pilot.app.screen
    await settle(
        pilot,
        lambda: (
            "does not resolve" in str(screen.query_one("#probe-result").render())
            and "schemas," in str(screen.query_one("#sources").render())
        ),
    )


async def help_screen(pilot, paths) -> None:
    await pilot.press("question_mark")
    await settle(pilot)


async def streams(pilot, paths) -> None:
    await go(pilot, "streams")
    screen = pilot.app.screen
    await settle(pilot, lambda: screen.query_one("#streams-table").row_count > 0)
    await pilot.press("slash", *"0.25", "enter")
    await settle(pilot, lambda: "at rate 0.25" in str(screen.query_one("#whatif-result").render()))
    await pilot.press("escape")
    await settle(pilot)


async def sessions(pilot, paths) -> None:
    await go(pilot, "sessions")
    screen = pilot.app.screen
    await settle(pilot, lambda: screen.query_one("#sessions-table").row_count > 0)
    await pilot.press("enter")
    await settle(pilot, lambda: screen.query_one("#timeline-table").row_count > 0)


async def experiments(pilot, paths) -> None:
    await go(pilot, "experiments")
    table = pilot.app.screen.query_one("#experiments-table")
    await settle(pilot, lambda: table.row_count > 0)


async def replay(pilot, paths) -> None:
    """A real replay of an instrument's fixture into this sandbox, finished."""
    await go(pilot, "replay")
    screen = pilot.app.screen
    fixture = "~/mpsandbox/instruments/fixtures/web-edit-attempt-funnel.jsonl"
    await pilot.press("slash", *fixture)
    from textual.widgets import Select

    screen.query_one("#replay-dt", Select).value = "shift"
    screen.query_one("#replay-ids", Select).value = "fresh"
    await settle(pilot, lambda: "requests" in str(screen.query_one("#replay-preview").render()))
    await pilot.press("enter", "ctrl+s")
    await settle(pilot, lambda: screen.progress is not None and screen.progress.finished, 60)
    screen.query_one("#replay-start").focus()
    await settle(pilot)


async def metrics(pilot, paths) -> None:
    await go(pilot, "metrics")
    table = pilot.app.screen.query_one("#metrics-table")
    await settle(pilot, lambda: table.row_count > 0)


async def instruments(pilot, paths) -> None:
    await go(pilot, "instruments")
    table = pilot.app.screen.query_one("#instruments-table")
    await settle(pilot, lambda: table.row_count > 0)
    await pilot.press("down")
    await settle(pilot)


async def flips(pilot, paths) -> None:
    """web/base 1.3.0 edited in the clone (a bound tightened) while events are stored:
    the run that judged them again, and what flipped."""
    import yaml

    schema = paths["secondary"] / "jsonschema/analytics/product_metrics/web/base/1.3.0.yaml"
    doc = yaml.safe_load(schema.read_text())
    doc["properties"]["action"]["maxLength"] = 10  # save_intent, save_success: too long
    schema.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    await go(pilot, "flips")
    table = pilot.app.screen.query_one("#flips-table")
    await settle(pilot, lambda: table.row_count > 0, 60)


SCENES: list[tuple[str, Callable[..., Awaitable[None]]]] = [
    ("live", live),
    ("live-filtered", live_filtered),
    ("detail", detail),
    ("errors", errors),
    ("schemas", schemas),
    ("help", help_screen),
    ("streams", streams),
    ("sessions", sessions),
    ("experiments", experiments),
    ("replay", replay),
    ("metrics", metrics),
    ("instruments", instruments),
]


async def shoot(out: Path) -> list[Path]:
    camera = Camera(out)
    with tempfile.TemporaryDirectory(prefix="mpsandbox-screenshots-") as scratch:
        home = Path(scratch) / "home"
        paths = lay_out(home)
        saved = {k: os.environ.get(k) for k in ("HOME", "MPSANDBOX_OFFLINE", "XDG_CACHE_HOME")}
        os.environ["HOME"] = str(home)  # the intake and the simulator inherit it
        os.environ["MPSANDBOX_OFFLINE"] = "1"
        os.environ["XDG_CACHE_HOME"] = str(home / ".cache")
        try:
            port = pick_port()
            await live_session(camera, paths, port)
            await port_taken(camera, paths, port)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return camera.written


def main() -> None:
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    started = time.monotonic()
    with contextlib.suppress(KeyboardInterrupt):
        written = asyncio.run(shoot(out))
        print(f"{len(written)} pictures in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
