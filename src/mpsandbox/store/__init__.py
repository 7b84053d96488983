"""The SQLite store: schema and migrations, the single writer, queries and retention.

Faces read through :class:`StoreReader` and write only through a :class:`Writer` (the
protocol in ``writer_protocol.py``): :class:`StoreWriter`, whose one thread owns the only
write connection (see ``writer.py`` for why), or :class:`ProcessStoreWriter`, the same in a
child process.
"""

from .database import DEFAULT_BUSY_TIMEOUT, StoreError, connect, explain_error, open_database
from .migrations import MIGRATIONS, Migration, applied_migrations, apply_migrations, migration
from .process_writer import ProcessStoreWriter
from .queries import MAX_LIMIT, EventFilter, StoreReader
from .retention import apply_retention
from .writer import BacklogFull, StoreWriter, indexed_fields
from .writer_protocol import Writer

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "MAX_LIMIT",
    "MIGRATIONS",
    "BacklogFull",
    "EventFilter",
    "Migration",
    "ProcessStoreWriter",
    "StoreError",
    "StoreReader",
    "StoreWriter",
    "Writer",
    "applied_migrations",
    "apply_migrations",
    "apply_retention",
    "connect",
    "explain_error",
    "indexed_fields",
    "migration",
    "open_database",
]
