"""A fresh clone passes its tests with nothing beside it: the reference data is tests/data."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
SRC = TESTS.parent / "src"

#: The sibling reference folder's name, spelled so that this file does not name it itself.
_NAME = "sha" + "red"
#: A path into the sibling reference folder, as written in Python.
_SIBLING = re.compile(rf"""\.\./{_NAME}|["']{_NAME}["']""")


def _readers_of_the_sibling(folder: Path) -> list[str]:
    hits = []
    for path in sorted(folder.rglob("*.py")):
        if path.resolve() == Path(__file__).resolve():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _SIBLING.search(line):
                hits.append(f"{path.relative_to(folder.parent)}:{n}: {line.strip()}")
    return hits


def test_no_test_reads_the_sibling_reference_folder():
    assert _readers_of_the_sibling(TESTS) == []


def test_no_code_looks_for_reference_schemas_beside_the_checkout():
    assert _readers_of_the_sibling(SRC) == []


def test_the_pattern_catches_a_sibling_path(tmp_path):
    (tmp_path / "t.py").write_text(f'WM = ROOT / ".." / "{_NAME}" / "wm"\n')
    (tmp_path / "u.py").write_text(f'open("../{_NAME}/wm/x.json")\n')
    assert len(_readers_of_the_sibling(tmp_path)) == 2


def test_every_data_folder_names_its_provenance_and_licence():
    folders = [p for p in DATA.iterdir() if p.is_dir()]
    assert {p.name for p in folders} >= {"schemas", "eventgate", "metrics-platform"}
    for folder in folders:
        text = (folder / "PROVENANCE.md").read_text()
        assert "Licence" in text or "licence" in text, folder
    for gpl in ("metrics-platform", "eventlogging"):
        assert "GNU GENERAL PUBLIC LICENSE" in (DATA / gpl / "COPYING").read_text()


def test_version_links_are_real_symlinks():
    base = DATA / "schemas/secondary/jsonschema/analytics/product_metrics/web/base"
    assert (base / "latest").is_symlink()
    assert (base / "1.3.0").is_symlink()
    assert (base / "latest").resolve() == (base / "1.3.0.yaml").resolve()


def test_the_data_stays_small():
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file() and not p.is_symlink())
    assert total < 5 * 1024 * 1024
