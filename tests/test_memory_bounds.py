"""Memory a long-running sandbox keeps for its whole life stays bounded and compact.

Issue 15 asks for every process of a sandbox holding a million events, under load, to fit in
200 MB together (measured by bench/scale.py, not here). These tests pin the structures that
measurement found big, by what they hold, never by a process's resident size.
"""

from __future__ import annotations

import subprocess
import sys

from mpsandbox.schemas.ajv_regex import _canonical_table, compile_js_regex
from mpsandbox.store import StoreWriter


def _deep_size(obj: object) -> int:
    if isinstance(obj, dict):
        return sys.getsizeof(obj) + sum(_deep_size(k) + _deep_size(v) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return sys.getsizeof(obj) + sum(_deep_size(v) for v in obj)
    return sys.getsizeof(obj)


def test_case_folding_table_is_compact():
    """Built at the first pattern with the ``i`` flag, and kept: a group per code unit held
    ~10 MB of the intake's memory."""
    held = sum(_deep_size(part) for part in _canonical_table())
    assert held < 1_000_000, held


def test_case_folding_still_follows_javascript():
    """JavaScript's non-unicode Canonicalize: upper case, but never from non-ASCII to ASCII."""
    assert compile_js_regex("^[a-z]+$", True).search("Kelvin")
    assert compile_js_regex("^\u00b5$", True).search("\u039c")  # micro sign ~ capital mu
    assert compile_js_regex("^\u00b5$", True).search("\u03bc")  # ~ small mu
    assert not compile_js_regex("^s$", True).search("\u017f")  # long s: upper is ASCII S
    assert not compile_js_regex("^k$", True).search("\u212a")  # Kelvin sign
    assert compile_js_regex("^[^a]$", True).search("b")
    assert not compile_js_regex("^[^a]$", True).search("A")


def test_tui_process_loads_no_http_server():
    """The TUI's process renders and reads; its intake child serves. aiohttp (and what it
    pulls in: yarl, multidict, ssl's uses) added ~12 MB to the TUI's resident memory."""
    code = "import sys, mpsandbox.tui.app; print(sorted(m for m in sys.modules if m == 'aiohttp'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_writer_page_cache_is_bounded(tmp_path):
    """The writer's page cache fills to its size on any big store and stays for the store
    process's life; 16 MiB was a third of that process's memory for no measurable speed."""
    writer = StoreWriter(tmp_path / "store.db")
    writer.start()
    try:
        cache, page = writer.run_in_writer(
            lambda conn: (
                conn.execute("PRAGMA cache_size").fetchone()[0],
                conn.execute("PRAGMA page_size").fetchone()[0],
            )
        ).result(30)
    finally:
        writer.close()
    held = -cache * 1024 if cache < 0 else cache * page
    assert 0 < held <= 4 * 2**20, held
