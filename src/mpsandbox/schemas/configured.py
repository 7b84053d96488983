"""The schema sources every command judges events with: one function, one order.

``--schemas`` directories (and ``MPSANDBOX_SCHEMAS``) first, then the public schema
repositories at schema.wikimedia.org (primary, then secondary, as the EventGate devserver's
``schema_base_uris``; ``MPSANDBOX_REMOTE_SCHEMAS`` replaces them, ``--remote-schema-base``
adds one), then mpsandbox's built-in ``schemas/``. Remote files are cached on disk and read
from there afterwards; ``--offline`` (``MPSANDBOX_OFFLINE=1``) leaves only the cache.
Everything that judges (serve, the TUI, validate, import, replay, check, simulate, demo,
the authoring commands) builds its sources here, so no two commands can disagree.
"""

from __future__ import annotations

from typing import Any

from mpsandbox.schemas.remote import RemoteSource
from mpsandbox.schemas.sources import DirectorySource, builtin_schema_dir

#: The EventGate devserver's ``schema_base_uris`` (EventLogging's devserver config), in its
#: order.
PUBLIC_REMOTES = (
    "https://schema.wikimedia.org/repositories/primary/jsonschema",
    "https://schema.wikimedia.org/repositories/secondary/jsonschema",
)
BUILTIN_NAME = "mpsandbox built-in schemas"

Source = DirectorySource | RemoteSource


def schema_sources(settings: Any) -> list[Source]:
    """The ordered sources ``settings`` name; see the module docstring."""
    sources: list[Source] = [
        DirectorySource(d, base_slash=settings.schema_base_slash) for d in settings.schema_dirs
    ]
    for base in dict.fromkeys(settings.remote_schemas):
        sources.append(
            RemoteSource(
                base,
                settings.cache_dir,
                timeout=settings.remote_timeout,
                offline=settings.offline,
            )
        )
    if settings.use_builtin_schemas:
        sources.append(DirectorySource(builtin_schema_dir(), name=BUILTIN_NAME))
    return sources
