"""Packing large values (event and findings JSON, request bodies) for the disk, and
unpacking them.

Realistic events are ~1.5 kB of JSON that repeat the same keys, schema URIs and context
event after event; zstd with a dictionary trained on the store's first values packs one to
~130 bytes (~9%), and a 10-event body to ~5%, at ~2 us to pack and ~1 us to unpack (see
docs/storage.md for the measurements against zlib and dictionary-less zstd).

A packed value is a BLOB whose first byte says how the rest is stored:

* ``0``: the bytes as they are (packing would not have made them smaller);
* ``1``: a zstd frame without a dictionary (before the store has trained one);
* ``2``: the id of a ``codec_dicts`` row as an unsigned LEB128 number, then a zstd frame
  made with that dictionary.

Event and findings JSON written before packing existed is TEXT and reads as it is (so does
findings JSON rewritten by a retraction), so a value's type tells packed from plain for
those columns. Request bodies were BLOBs already, so migration
0010 packs every stored body: from then on every non-NULL body is packed.

Dictionaries are never changed or deleted once written (a reset keeps them), so a reader
may cache one by id for as long as its connection lives. :func:`unpack` is the one decode
function: readers call it through the SQL functions that :func:`register` installs on every
connection (``unpack_text`` for JSON text, ``unpack_blob`` for bodies), so SQL such as
``json_extract(unpack_text(event), '$.action')`` keeps working.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import zstandard

log = logging.getLogger(__name__)

RAW, ZSTD, ZSTD_DICT = 0, 1, 2
_RAW, _ZSTD, _ZSTD_DICT = bytes((RAW,)), bytes((ZSTD,)), bytes((ZSTD_DICT,))
#: zstd level: with a dictionary, levels 1-3 pack alike (~2 us); 9 saves 4% for 5x the time.
LEVEL = 3
DICT_SIZE = 16 * 1024
#: A column trains its dictionary once it has seen this many bytes in at least
#: TRAIN_MIN_SAMPLES values (or TRAIN_MAX_SAMPLES values, whatever their size); values
#: over SAMPLE_MAX bytes are not sampled (memory stays a few MB at most).
TRAIN_BYTES = 1 << 20
TRAIN_MIN_SAMPLES = 256
TRAIN_MAX_SAMPLES = 8_000
SAMPLE_MAX = 16 * 1024


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_leb128(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return n, pos
        shift += 7


class Dictionaries:
    """The dictionaries of one connection's store, read on first use and kept."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._plain = zstandard.ZstdDecompressor()
        self._by_id: dict[int, zstandard.ZstdDecompressor] = {}

    def plain(self) -> zstandard.ZstdDecompressor:
        return self._plain

    def get(self, dict_id: int) -> zstandard.ZstdDecompressor:
        d = self._by_id.get(dict_id)
        if d is None:
            row = self._conn.execute(
                "SELECT data FROM codec_dicts WHERE id = ?", (dict_id,)
            ).fetchone()
            if row is None:
                raise ValueError(f"packed value names dictionary {dict_id}, which is missing")
            d = self._by_id[dict_id] = zstandard.ZstdDecompressor(
                dict_data=zstandard.ZstdCompressionDict(bytes(row[0]))
            )
        return d


def unpack(value: Any, dicts: Dictionaries) -> Any:
    """A stored value as it was before packing: bytes for a packed value, anything else
    (plain TEXT written before packing existed, NULL) unchanged."""
    if type(value) is not bytes:
        return value
    kind = value[0] if value else RAW
    if kind == ZSTD_DICT:
        dict_id, pos = _read_leb128(value, 1)
        return dicts.get(dict_id).decompress(value[pos:])
    if kind == ZSTD:
        return dicts.plain().decompress(value[1:])
    return value[1:]


def register(conn: sqlite3.Connection) -> None:
    """Install ``unpack_text(x)`` (packed JSON to TEXT) and ``unpack_blob(x)`` (a packed
    body to its bytes) on a connection."""
    dicts = Dictionaries(conn)
    #: The last value unpacked and its text: SQL such as
    #: ``CASE WHEN instr(unpack_text(event), ?) THEN json_extract(unpack_text(event), ?)``
    #: unpacks the same row's value two or three times, and comparing ~150 bytes is much
    #: cheaper than unpacking them again.
    last: list[Any] = [None, None]

    def unpack_text(value: Any) -> Any:
        if type(value) is not bytes:
            return value
        if value == last[0]:
            return last[1]
        out = unpack(value, dicts)
        text = out.decode("utf-8") if type(out) is bytes else out
        last[0], last[1] = value, text
        return text

    def unpack_blob(value: Any) -> Any:
        return unpack(value, dicts)

    conn.create_function("unpack_text", 1, unpack_text, deterministic=True)
    conn.create_function("unpack_blob", 1, unpack_blob, deterministic=True)


class Packer:
    """Packs one column's values in the writer; trains the column's dictionary from the
    first values it sees and, once that is committed, packs with it.

    Used by one thread (the writer's). ``pending`` holds a dictionary inserted in the
    current transaction: it is used only after :meth:`committed`, so no committed value can
    name a dictionary that a rollback took away.
    """

    def __init__(self, column: str) -> None:
        self.column = column
        self._plain = zstandard.ZstdCompressor(level=LEVEL, write_checksum=False)
        self._with_dict: zstandard.ZstdCompressor | None = None
        self._prefix = _ZSTD
        self._samples: list[bytes] | None = []
        self._sample_bytes = 0
        self.pending: tuple[int, zstandard.ZstdCompressionDict] | None = None
        #: pack_text's memo: the last text, the prefix (dictionary) it was packed with.
        self._last_text: str | None = None
        self._last_prefix = b""
        self._last_packed = b""

    def load(self, conn: sqlite3.Connection) -> None:
        """Use the column's newest stored dictionary, if it has one."""
        row = conn.execute(
            "SELECT id, data FROM codec_dicts WHERE column_name = ? ORDER BY id DESC LIMIT 1",
            (self.column,),
        ).fetchone()
        if row is not None:
            self._use(row[0], zstandard.ZstdCompressionDict(bytes(row[1])))

    def _use(self, dict_id: int, d: zstandard.ZstdCompressionDict) -> None:
        self._with_dict = zstandard.ZstdCompressor(
            level=LEVEL, dict_data=d, write_checksum=False, write_dict_id=False
        )
        self._prefix = _ZSTD_DICT + _leb128(dict_id)
        self._samples = None

    def pack(self, data: bytes) -> bytes:
        samples = self._samples
        if (
            samples is not None
            and len(data) <= SAMPLE_MAX
            and (self._sample_bytes < TRAIN_BYTES or len(samples) < TRAIN_MIN_SAMPLES)
        ):
            samples.append(data)
            self._sample_bytes += len(data)
        packer = self._with_dict or self._plain
        out = packer.compress(data)
        if len(out) + len(self._prefix) >= len(data) + 1:
            return _RAW + data
        return self._prefix + out

    def pack_text(self, text: str) -> bytes:
        """:meth:`pack` of a text, remembering the last one: for a column whose values
        repeat one after another (a client's request headers), a repeat costs a comparison
        instead of an encode and a compression."""
        if text == self._last_text and self._last_prefix is self._prefix:
            return self._last_packed
        packed = self.pack(text.encode("utf-8"))
        self._last_text, self._last_prefix, self._last_packed = text, self._prefix, packed
        return packed

    def train_if_ready(self, conn: sqlite3.Connection) -> None:
        """Inside the writer's transaction: train and insert the dictionary once enough
        values were seen (~150 ms, once per store and column)."""
        samples = self._samples
        if samples is None or self.pending is not None:
            return
        n = len(samples)
        if not (
            (n >= TRAIN_MIN_SAMPLES and self._sample_bytes >= TRAIN_BYTES) or n >= TRAIN_MAX_SAMPLES
        ):
            return
        try:
            d = zstandard.train_dictionary(DICT_SIZE, samples)
        except zstandard.ZstdError as exc:  # too little variety: keep packing without
            log.info("no zstd dictionary for %s: %s", self.column, exc)
            self._samples = None
            return
        cur = conn.execute(
            "INSERT INTO codec_dicts (column_name, data) VALUES (?, ?)",
            (self.column, d.as_bytes()),
        )
        self.pending = (cur.lastrowid, d)

    def committed(self) -> None:
        if self.pending is not None:
            self._use(*self.pending)
            self.pending = None

    def rolled_back(self) -> None:
        self.pending = None
