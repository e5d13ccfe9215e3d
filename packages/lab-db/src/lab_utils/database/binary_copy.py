"""PostgreSQL's binary COPY format, encoded at C speed with precompiled ``struct`` layouts.

Each column type has a fixed-size binary form (but text); a row of such columns packs
with one ``struct.Struct.pack`` call, a single C call per row. Rows holding NULLs, text or
values needing conversion take a slower per-field path, so any row is accepted.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
"""Signature, flags and header-extension length."""
TRAILER = struct.pack("!h", -1)
"""End of data."""

_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
_PG_EPOCH_UNIX = 946_684_800

# PostgreSQL type name -> (struct code, size in bytes) of the fixed-size binary forms.
FIXED: dict[str, tuple[str, int]] = {
    "timestamp with time zone": ("q", 8),
    "timestamp without time zone": ("q", 8),
    "double precision": ("d", 8),
    "real": ("f", 4),
    "bigint": ("q", 8),
    "integer": ("i", 4),
    "smallint": ("h", 2),
    "boolean": ("?", 1),
}
TEXT_TYPES = ("text", "character varying")
"""Variable-size types sent as UTF-8."""


def to_pg_micros(value: Any) -> int:
    """Microseconds since 2000-01-01 UTC for a datetime (naive = local time) or a Unix time."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        delta: dt.timedelta = value - _PG_EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, (int, float)):
        return round((value - _PG_EPOCH_UNIX) * 1_000_000)
    raise TypeError(f"{value!r} is not a time (datetime or Unix seconds)")


def _to_float(value: Any) -> float:
    return float(value)  # also 'NaN', 'inf', Decimal, numpy floats


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
        converters: list[Callable[[Any], Any]] = []
        for name in self.types:
            if name in FIXED:
                code = FIXED[name][0]
                if name.startswith("timestamp"):
                    converters.append(to_pg_micros)
                elif code in "df":
                    converters.append(_to_float)
                elif code == "?":
                    converters.append(bool)
                else:
                    converters.append(int)
            elif name in TEXT_TYPES:
                converters.append(str)
            else:
                raise ValueError(f"batch insert does not support columns of type {name!r}")
        self._converters = converters
        self._count = len(self.types)
        fixed = [FIXED.get(name) for name in self.types]
        self._lengths = [f[1] if f else -1 for f in fixed]
        # All columns fixed-size: the whole row is one precompiled layout,
        # field count then (length, value) pairs, packed in a single C call.
        self.fast = all(fixed)
        self._packer = (
            struct.Struct("!h" + "".join(f"i{f[0]}" for f in fixed if f)) if self.fast else None
        )

    def encode_row(self, row: Sequence[Any]) -> bytes:
        """Return one row in binary COPY form (any row: NULLs, text, conversions)."""
        if len(row) != self._count:
            raise ValueError(f"row has {len(row)} values for {self._count} columns")
        parts = [struct.pack("!h", self._count)]
        for value, name, convert in zip(row, self.types, self._converters, strict=True):
            if value is None:
                parts.append(struct.pack("!i", -1))
            elif name in TEXT_TYPES:
                data = convert(value).encode("utf-8")
                parts.append(struct.pack("!i", len(data)) + data)
            else:
                code, size = FIXED[name]
                parts.append(struct.pack(f"!i{code}", size, convert(value)))
        return b"".join(parts)

    def encode(self, rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
        """Yield the binary form of ``rows``, one chunk of bytes per row."""
        packer, count = self._packer, self._count
        if packer is None:
            yield from map(self.encode_row, rows)
            return
        lengths = self._lengths
        converters = self._converters
        pack = packer.pack
        for row in rows:
            try:
                # The fast path: one C call per row; fails on None, bad types, bad lengths.
                values: list[Any] = [count]
                for size, convert, value in zip(lengths, converters, row, strict=True):
                    values.append(size)
                    values.append(convert(value))
                yield pack(*values)
            except (TypeError, ValueError, struct.error):
                yield self.encode_row(row)


class CopyStream:
    """A file-like reader over the binary COPY data of ``rows`` (for ``copy_expert``).

    Encodes lazily, ``chunk_rows`` at a time, so a million rows never sit in memory at
    once.
    """

    def __init__(
        self, encoder: RowEncoder, rows: Iterable[Sequence[Any]], chunk_rows: int = 20_000
    ) -> None:
        self._parts = encoder.encode(rows)
        self._chunk_rows = chunk_rows
        self._buffer = bytearray(HEADER)
        self._done = False
        self.rows = 0
        """Rows encoded so far."""
        self.error: Exception | None = None
        """What stopped the encoding (a bad row), to re-raise instead of the COPY failure."""

    def _fill(self) -> None:
        taken = 0
        parts = []
        for part in self._parts:
            parts.append(part)
            taken += 1
            if taken >= self._chunk_rows:
                break
        else:
            self._done = True
        self.rows += taken
        self._buffer += b"".join(parts)
        if self._done:
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
