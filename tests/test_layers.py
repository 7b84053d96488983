"""The layer rules in one place.

The static rules are import-linter contracts in ``pyproject.toml`` (run by ``./test`` as
``lint-imports``); this file checks that those contracts still name every top-level module (a
module added later would otherwise sit outside every rule) and that the rules hold at run time
too: importing the core loads no Textual, and the platform rules load no server or store.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "mpsandbox"


def _top_level_modules() -> set[str]:
    names = set()
    for p in PACKAGE.iterdir():
        if p.suffix == ".py" and p.stem != "__init__":
            names.add(f"mpsandbox.{p.stem}")
        elif p.is_dir() and (p / "__init__.py").exists():
            names.add(f"mpsandbox.{p.name}")
    return names


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def test_contracts_name_every_top_level_module():
    modules = _top_level_modules()
    contracts = _contracts()
    core = set(contracts["core-without-textual"]["source_modules"])
    faces = {m for m in modules if m.startswith(("mpsandbox.cli", "mpsandbox.tui"))}
    assert core == modules - faces - {"mpsandbox.__main__"}, "core-without-textual is stale"
    outside_tui = set(contracts["textual-only-in-tui"]["source_modules"])
    assert outside_tui == modules - {"mpsandbox.tui"}, "textual-only-in-tui is stale"
    not_for_schemas = set(contracts["schemas-stand-alone"]["forbidden_modules"])
    assert not_for_schemas == modules - {
        "mpsandbox.schemas",
        "mpsandbox.errors",
        "mpsandbox.__main__",
    }


def test_lint_imports_passes():
    """The same check ./test runs, so a plain pytest run catches a broken layer too."""
    tool = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run(
        [str(tool), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def _fresh_import(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_core_imports_without_textual():
    """Every module outside the TUI, imported for real: none of them pulls Textual in."""
    res = _fresh_import(
        "import sys, importlib, pkgutil, mpsandbox\n"
        "for m in pkgutil.walk_packages(mpsandbox.__path__, 'mpsandbox.'):\n"
        "    if '.tui' in m.name or m.name.endswith('__main__'): continue\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_platform_rules_are_pure_functions():
    """No Textual, no aiohttp, no store: the pipeline calls these as plain functions."""
    res = _fresh_import(
        "import sys\n"
        "import mpsandbox.platform.rules, mpsandbox.platform.experiments\n"
        "import mpsandbox.platform.stream_configs\n"
        "bad = [m for m in ('textual', 'aiohttp', 'sqlite3', 'mpsandbox.store', "
        "'mpsandbox.pipeline') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    assert res.returncode == 0, res.stderr


def test_routes_are_registered_in_one_table():
    """intake/routes.py is the one route table: no other module adds routes itself."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in PACKAGE.rglob("*.py")
        if p.name != "routes.py" and "router.add_" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_the_route_table_is_what_the_server_answers():
    from mpsandbox.config import Settings
    from mpsandbox.intake.app import make_app
    from mpsandbox.intake.routes import routes
    from mpsandbox.sandbox import Sandbox

    settings = Settings(db=Path("/nonexistent/never-opened.db"), offline=True)
    app = make_app(Sandbox(settings))
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.method != "HEAD"}
    assert served == {(r.method, r.path) for r in routes(settings)}
    assert ("GET", "/sandbox/requests/{id}") in served and ("GET", "/api/v1/experiments") in served


#: What opens the database for writing: the TUI uses none of it (its writes are intents
#: the intake commits through the store's single writer).
WRITE_OPENERS = {
    "connect",
    "open_database",
    "apply_migrations",
    "StoreWriter",
    "ProcessStoreWriter",
}


def _tui_write_paths(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "sqlite3"]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] == "sqlite3":
                found.append(node.module)
            found += [a.name for a in node.names if a.name in WRITE_OPENERS]
        elif isinstance(node, ast.Attribute) and node.attr in WRITE_OPENERS:
            found.append(node.attr)
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            # Without write=, these open a read-write connection of their own.
            if name in ("Overrides", "ChaosStore") and "write" not in {
                k.arg for k in node.keywords
            }:
                found.append(f"{name}() without write=")
    return found


def test_the_tui_opens_no_write_connection():
    """The TUI only renders and sends intents: no module of it imports sqlite3, names a
    way to open the database for writing, or builds overrides or chaos on a connection
    of their own (tests/test_tui_platform.py checks the same at run time)."""
    offenders = {}
    for path in (PACKAGE / "tui").rglob("*.py"):
        found = _tui_write_paths(ast.parse(path.read_text(encoding="utf-8")))
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_the_write_path_check_finds_each_way_in():
    code = (
        "import sqlite3\n"
        "from mpsandbox.store import connect, StoreWriter\n"
        "from mpsandbox import store\n"
        "store.open_database('x')\n"
        "Overrides('x.db')\n"
        "ChaosStore('x.db', write=f)\n"
    )
    assert sorted(_tui_write_paths(ast.parse(code))) == [
        "Overrides() without write=",
        "StoreWriter",
        "connect",
        "open_database",
        "sqlite3",
    ]


def test_the_tui_builds_a_schema_registry_in_one_place_only():
    """One registry per running sandbox: the TUI asks the intake's (tui/schema_questions.py),
    and builds one of its own there alone, for when no intake runs."""
    builders = sorted(
        str(p.relative_to(PACKAGE))
        for p in (PACKAGE / "tui").rglob("*.py")
        if any(
            name in p.read_text(encoding="utf-8")
            for name in ("build_registry", "SchemaRegistry(", "schema_sources(")
        )
    )
    assert builders == ["tui/schema_questions.py"]


def test_the_store_loads_none_of_the_readers_built_on_it():
    """At run time too (the import-linter contract store-below-readers is the static
    rule): the metric previews and the sampling what-if sit above the store."""
    res = _fresh_import(
        "import sys\n"
        "import mpsandbox.store, mpsandbox.store.queries, mpsandbox.store.process_writer\n"
        "bad = [m for m in sys.modules if m.startswith(('mpsandbox.metrics', 'mpsandbox.whatif'))]\n"
        "assert not bad, bad\n"
    )
    assert res.returncode == 0, res.stderr


def test_the_store_reader_only_reads(tmp_path):
    """StoreReader's connections are read-only: whatever a reader above the store does
    with one, it cannot write."""
    import sqlite3

    import pytest

    from mpsandbox.store import StoreReader, StoreWriter

    db = tmp_path / "r.db"
    writer = StoreWriter(db)
    writer.start()
    writer.close()
    reader = StoreReader(db)
    try:
        with reader.snapshot() as conn, pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM events")
    finally:
        reader.close()
