"""PostgreSQL's binary COPY format, encoded column by column at C speed.

Rows of fixed-size columns (times, numbers, booleans) are encoded a chunk at a time: each
column goes through one ``array`` and is scattered into the rows by slice assignments, so
the per-value work happens in C. Rows holding NULLs, text or values needing conversion
take a row-by-row path, so any row is accepted.
"""

from __future__ import annotations

import array
import itertools
import struct
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from lab_utils.database.column_types import REGISTRY, ColumnType, column_type, to_pg_micros

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
"""Signature, flags and header-extension length."""
TRAILER = struct.pack("!h", -1)
"""End of data."""

# PostgreSQL type name -> (struct code, size in bytes) of the fixed-size binary forms.
FIXED: dict[str, tuple[str, int]] = {
    t.name: (t.struct_code, t.size) for t in REGISTRY.values() if t.struct_code is not None
}
TEXT_TYPES = tuple(t.name for t in REGISTRY.values() if t.struct_code is None)
"""Variable-size types sent as UTF-8."""


class RowEncoder:
    """Encodes rows for ``COPY ... FROM STDIN WITH (FORMAT binary)`` into given column types.

    Parameters
    ----------
    types : sequence of str
        PostgreSQL type names of the columns, in order (as ``format_type`` reports them).

    Raises
    ------
    ValueError
        A type that batch insert does not support.
    """

    def __init__(self, types: Sequence[str]) -> None:
        self.types = list(types)
        try:
            self._kinds: list[ColumnType] = [column_type(name) for name in self.types]
        except ValueError as error:
            raise ValueError(f"batch insert: {error}") from None
        self._count = len(self.types)
        # All columns fixed-size: rows are encoded a chunk at a time, column by column.
        self.fast = all(kind.struct_code for kind in self._kinds)
        self._row_size = 2 + sum(4 + kind.size for kind in self._kinds)

    def encode_row(self, row: Sequence[Any]) -> bytes:
        """Return one row in binary COPY form (any row: NULLs, text, conversions)."""
        if len(row) != self._count:
            raise ValueError(f"row has {len(row)} values for {self._count} columns")
        parts = [struct.pack("!h", self._count)]
        for value, kind in zip(row, self._kinds, strict=True):
            if value is None:
                parts.append(struct.pack("!i", -1))
            elif kind.struct_code is None:
                data = kind.convert(value).encode("utf-8")
                parts.append(struct.pack("!i", len(data)) + data)
            else:
                try:
                    parts.append(
                        struct.pack(f"!i{kind.struct_code}", kind.size, kind.convert(value))
                    )
                except struct.error:
                    raise ValueError(f"{value!r} is out of range for {kind.name}") from None
        return b"".join(parts)

    def encode_chunk(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """Return the binary form of ``rows``: columnar at C speed when possible."""
        if self.fast and rows:
            encoded = self._columnar(rows)
            if encoded is not None:
                return encoded
        return b"".join(map(self.encode_row, rows))

    def _columnar(self, rows: Sequence[Sequence[Any]]) -> bytes | None:
        """Encode a chunk column by column; None when a value needs the row-by-row path.

        Each column becomes one ``array`` (a C loop converting the Python values),
        byte-swapped to network order, and its bytes are scattered into the rows with
        extended-slice assignments, which are C loops too. Only the time conversion and
        the column extraction touch each value in Python.
        """
        count = len(rows)
        if {len(row) for row in rows} != {self._count}:
            return None
        size = self._row_size
        out = bytearray(size * count)
        _scatter(out, struct.pack("!h", self._count), 0, size, count)
        offset = 2
        try:
            for index, kind in enumerate(self._kinds):
                code, width = kind.struct_code or "", kind.size
                column = [row[index] for row in rows]
                if kind.is_time:
                    column = [to_pg_micros(value) for value in column]
                data = array.array(_ARRAY_CODES[code], column)
                if data.itemsize != width:  # a platform with other C type sizes
                    return None
                if sys.byteorder == "little":
                    data.byteswap()
                raw = data.tobytes()
                _scatter(out, struct.pack("!i", width), offset, size, count)
                offset += 4
                for byte in range(width):
                    out[offset + byte :: size] = raw[byte::width]
                offset += width
        except (TypeError, ValueError, OverflowError):
            return None
        return bytes(out)


# struct codes of FIXED -> array typecodes of the same size ('?' is sent as one byte).
_ARRAY_CODES = {"q": "q", "d": "d", "f": "f", "i": "i", "h": "h", "?": "b"}


def _scatter(out: bytearray, pattern: bytes, offset: int, step: int, count: int) -> None:
    """Write ``pattern`` at ``offset`` of each of ``count`` rows of ``step`` bytes."""
    for position, value in enumerate(pattern):
        out[offset + position :: step] = bytes((value,)) * count


class CopyStream:
    """A file-like reader over the binary COPY data of ``rows`` (for ``copy_expert``).

    Encodes lazily, ``chunk_rows`` at a time, so a million rows never sit in memory at
    once.
    """

    def __init__(
        self, encoder: RowEncoder, rows: Iterable[Sequence[Any]], chunk_rows: int = 20_000
    ) -> None:
        self._encoder = encoder
        self._rows = iter(rows)
        self._chunk_rows = chunk_rows
        self._buffer = bytearray(HEADER)
        self._done = False
        self.rows = 0
        """Rows encoded so far."""
        self.error: Exception | None = None
        """What stopped the encoding (a bad row), to re-raise instead of the COPY failure."""

    def _fill(self) -> None:
        chunk = list(itertools.islice(self._rows, self._chunk_rows))
        self._buffer += self._encoder.encode_chunk(chunk)
        self.rows += len(chunk)
        if len(chunk) < self._chunk_rows:
            self._done = True
            self._buffer += TRAILER

    def read(self, size: int = -1) -> bytes:
        """Return up to ``size`` bytes (all when negative)."""
        while not self._done and (size < 0 or len(self._buffer) < size):
            try:
                self._fill()
            except Exception as error:
                self.error = error
                raise
        if size < 0 or size >= len(self._buffer):
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readline(self, size: int = -1) -> bytes:
        """Binary COPY has no lines; psycopg2 only calls :meth:`read`."""
        return self.read(size)
