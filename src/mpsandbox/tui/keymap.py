"""The user's keymap: binding ids mapped to other keys, read from a TOML file.

``$MPSANDBOX_KEYMAP`` names the file; without it, ``$XDG_CONFIG_HOME/mpsandbox/keymap.toml``
(``~/.config/mpsandbox/keymap.toml``) is read if it exists. Each line moves one binding::

    "screen.live" = "l"
    "experiments.override" = "n,ctrl+g"

The ids are listed in docs/keymap.md (and the help, `?`, shows the keys in use). A file that cannot be read, or ids
that no binding has, are reported and the rest applies: a typo never stops the app.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

ENV = "MPSANDBOX_KEYMAP"


def keymap_path() -> Path:
    named = os.environ.get(ENV)
    if named:
        return Path(named)
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "mpsandbox" / "keymap.toml"


def load_keymap(path: Path, known: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """The keymap in ``path`` (empty when there is no file) and the problems found in it."""
    if not path.exists():
        return {}, []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {}, [f"{path}: {exc}"]
    known = set(known)
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in data.items():
        if binding_id not in known:
            problems.append(f"{path}: no binding has the id {binding_id!r}")
        elif not isinstance(keys, str) or not keys.strip():
            problems.append(f'{path}: {binding_id} needs keys as a string, e.g. "ctrl+g"')
        else:
            keymap[binding_id] = keys
    return keymap, problems
