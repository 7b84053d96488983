"""Paths the screens show: under the home directory as ``~/...`` (short, and a screenshot
names no user), typed ``~`` paths read as a shell reads them; event content untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

from mpsandbox.config import Settings
from mpsandbox.sandbox import build_registry
from mpsandbox.tui.paths import shown_path, typed_path
from mpsandbox.tui.screens.schemas import render_resolution

ROOT = Path(__file__).resolve().parents[1]


def test_paths_under_home_are_shown_with_a_tilde(tmp_path, monkeypatch):
    home = tmp_path / "alice"
    monkeypatch.setenv("HOME", str(home))
    assert (
        shown_path(home / "src/schemas/web/base/1.3.0.yaml") == "~/src/schemas/web/base/1.3.0.yaml"
    )
    assert shown_path(home) == "~"
    # Not under home: a sibling that shares the prefix, other places, URLs, nothing.
    assert shown_path(f"{home}2/x.yaml") == f"{home}2/x.yaml"
    assert shown_path("/srv/schemas/x.yaml") == "/srv/schemas/x.yaml"
    assert shown_path("https://schema.wikimedia.org/repositories/x") == (
        "https://schema.wikimedia.org/repositories/x"
    )
    assert shown_path(None) == ""


def test_a_typed_tilde_is_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert typed_path("  ~/fixtures/events.json ") == str(tmp_path / "fixtures/events.json")
    assert typed_path("/abs/events.json") == "/abs/events.json"


def test_the_schemas_screen_shows_a_checkout_under_home_with_a_tilde(tmp_path, monkeypatch):
    """A real registry over a schema directory in the home folder: the resolve probe names
    where it found the schema as ~/..., and where it looked for a missing one too."""
    home = tmp_path / "alice"
    checkout = home / "src" / "mpsandbox-schemas"
    shutil.copytree(ROOT / "schemas", checkout, symlinks=True)
    monkeypatch.setenv("HOME", str(home))
    settings = Settings(schema_dirs=(checkout,), use_builtin_schemas=False, remote_schemas=())
    registry = build_registry(settings)

    found = render_resolution(registry.resolve("/mpsandbox/smoke_test/1.0.0").probe()).plain
    missing = render_resolution(registry.resolve("/mpsandbox/smoke_test/9.9.9").probe()).plain
    for text in (found, missing):
        assert "~/src/mpsandbox-schemas" in text, text
        assert str(home) not in text, text
