"""PostgreSQL's binary COPY format, encoded a chunk at a time with the per-value work in C.

Three ways, one result (the same bytes, or the same error):

- **psycopg 3's C row formatter** (:mod:`~lab_utils.database.fast_rows`, ``lab-db[fast]``)
  for rows of the column types it encodes exactly as lab-db does;
- **straight from the rows** for times, doubles and integers: one ``struct`` call per row
  packs the values as they are, then the count and length fields and the times (converted
  a column at a time in C loops) are put in place for the whole chunk by strided copies;
- **column by column** for the other fixed-size types: the rows are packed by one
  ``struct`` per row in a C loop over the columns (or, when numpy is already imported,
  each column goes through one array and the rows are one structured numpy array);
- **row by row** for rows holding NULLs, text or values needing conversion, so any row
  is accepted.

Columnar input (:meth:`RowEncoder.encode_columns`) skips the rows altogether: sequences,
buffers (``array``, ``memoryview``) or numpy arrays of one column each.
"""

from __future__ import annotations

import array
import datetime as dt
import itertools
import math
import operator
import queue
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from lab_utils.database import fast_rows
from lab_utils.database.column_types import (
    PG_EPOCH,
    PG_EPOCH_UNIX,
    REGISTRY,
    ColumnType,
    column_type,
    to_pg_micros,
)

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

_NULL = struct.pack("!i", -1)
_MICROSECOND = dt.timedelta(microseconds=1)
_FLOAT4_MAX = 3.4028234663852886e38
# struct codes of FIXED -> array typecodes of the same size ('?' is sent as one byte).
_ARRAY_CODES = {"q": "q", "d": "d", "f": "f", "i": "i", "h": "h", "?": "b"}
# struct codes whose values struct checks exactly as the column path does (that path
# converts booleans and reals first, so their columns take it).
_AS_GIVEN_CODES = frozenset("dqih")


class _RowTemplate:
    """Rows of times, doubles and integers packed straight from the rows.

    One ``struct`` call per row (a C loop over the rows, no columns taken out of them)
    packs the values as they are; its count and length fields are pad bytes and a time
    is a one-byte placeholder. The count and length fields, the same in every row, and
    the times, converted a column at a time, are then put in place for the whole chunk
    by strided slice assignments, a C loop over the rows each.
    """

    def __init__(self, kinds: Sequence[ColumnType]) -> None:
        codes = "!2x"
        offset = 2
        self._lengths: list[tuple[int, int]] = []
        """Per column: the offset of its length field's last byte, and that byte."""
        self._times: list[tuple[int, int, str]] = []
        """Per time column: its index, the offset of its value, its struct code."""
        for index, kind in enumerate(kinds):
            self._lengths.append((offset + 3, kind.size))
            offset += 4
            if kind.is_time:
                codes += f"4x?{kind.size - 1}x"
                self._times.append((index, offset, kind.struct_code or ""))
            else:
                codes += f"4x{kind.struct_code}"
            offset += kind.size
        self._struct = struct.Struct(codes)
        self._size = offset
        self._count = struct.pack("!h", len(kinds))

    def pack(self, rows: Sequence[Sequence[Any]]) -> bytearray | None:
        """Return the rows' binary form; None when the row path must decide.

        The rows must all have one value per column. None when a value is not given as it
        is sent (NULL, text, a number to convert); the row path then encodes it or raises
        the error naming it.
        """
        count = len(rows)
        times = []
        try:
            for index, offset, code in self._times:
                micros = _micros([row[index] for row in rows])
                times.append((offset, struct.pack(f"!{count}{code}", *micros)))
            out = bytearray().join(itertools.starmap(self._struct.pack, rows))
        except (TypeError, ValueError, OverflowError, struct.error):
            return None
        step = self._size
        for position, byte in enumerate(self._count):
            if byte:
                out[position::step] = bytes((byte,)) * count
        for position, byte in self._lengths:
            out[position::step] = bytes((byte,)) * count
        for offset, data in times:
            width = len(data) // count
            for position in range(width):
                out[offset + position :: step] = data[position::width]
        return out


def _value_packer(kind: ColumnType) -> Callable[[Any], bytes]:
    """Return a function giving one value's binary field (length + data; NULL for None)."""
    convert = kind.convert
    if kind.struct_code is None:

        def text(value: Any) -> bytes:
            if value is None:
                return _NULL
            data: bytes = convert(value).encode("utf-8")
            return struct.pack("!i", len(data)) + data

        return text
    pack = struct.Struct(f"!i{kind.struct_code}").pack
    size, name, is_real = kind.size, kind.name, kind.struct_code == "f"

    def fixed(value: Any) -> bytes:
        if value is None:
            return _NULL
        converted = convert(value)
        if is_real and abs(converted) > _FLOAT4_MAX and abs(converted) != float("inf"):
            raise ValueError(f"{value!r} is out of range for {name}")
        try:
            return pack(size, converted)
        except (struct.error, OverflowError):
            raise ValueError(f"{value!r} is out of range for {name}") from None

    return fixed


class RowEncoder:
    """Encodes rows for ``COPY ... FROM STDIN WITH (FORMAT binary)`` into given column types.

    Parameters
    ----------
    types : sequence of str
        PostgreSQL type names of the columns, in order (as ``format_type`` reports them).
    accelerate : bool, optional
        Use psycopg 3's C formatter where it is installed and fits the types (the bytes
        are the same either way; False is for comparing the paths).

    Raises
    ------
    ValueError
        A type that batch insert does not support.
    """

    def __init__(self, types: Sequence[str], accelerate: bool = True) -> None:
        self.types = list(types)
        try:
            self._kinds: list[ColumnType] = [column_type(name) for name in self.types]
        except ValueError as error:
            raise ValueError(f"batch insert: {error}") from None
        self._count = len(self.types)
        self._count_field = struct.pack("!h", self._count)
        self._packers = [_value_packer(kind) for kind in self._kinds]
        # All columns fixed-size: rows are encoded a chunk at a time, column by column.
        self.fast = all(kind.struct_code for kind in self._kinds)
        codes = "".join(f"i{kind.struct_code}" for kind in self._kinds) if self.fast else ""
        self._row_struct = struct.Struct(f"!h{codes}")
        self._template = (
            _RowTemplate(self._kinds)
            if all(kind.is_time or kind.struct_code in _AS_GIVEN_CODES for kind in self._kinds)
            else None
        )
        names = [kind.name for kind in self._kinds]
        self._formatter = fast_rows.formatter_for(names) if accelerate else None

    @property
    def formatter(self) -> fast_rows.RowFormatter | None:
        """The C formatter of psycopg 3 for these types, when it is used."""
        return self._formatter

    @property
    def accelerated(self) -> bool:
        """True when rows go through psycopg 3's C formatter (``lab-db[fast]``)."""
        return self._formatter is not None

    def _require_length(self, row: Sequence[Any]) -> None:
        if len(row) != self._count:
            raise ValueError(f"row has {len(row)} values for {self._count} columns")

    def encode_row(self, row: Sequence[Any]) -> bytes:
        """Return one row in binary COPY form (any row: NULLs, text, conversions).

        Raises
        ------
        ValueError, TypeError
            A row of the wrong length, or a value its column cannot hold.
        """
        self._require_length(row)
        fields = [pack(value) for pack, value in zip(self._packers, row, strict=True)]
        return self._count_field + b"".join(fields)

    def check_row(self, row: Sequence[Any], skip: Sequence[type] = ()) -> None:
        """Raise for a value its column cannot hold, as :meth:`encode_row` would.

        Parameters
        ----------
        row : sequence
            The values.
        skip : sequence of type, optional
            Per column, a value type known to fit (its values are not checked).

        Raises
        ------
        ValueError, TypeError
            A row of the wrong length, or a value its column cannot hold.
        """
        self._require_length(row)
        skip = skip or (type(None),) * self._count
        for pack, fits, value in zip(self._packers, skip, row, strict=True):
            if type(value) is not fits:
                pack(value)

    def encode_chunk(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """Return the binary form of ``rows`` (no header or trailer)."""
        if self._formatter is None and self._template is not None:
            packed = self._packed_rows(rows)
            if packed is not None:
                return bytes(packed)  # the one copy psycopg2's bytes-only read needs
        out = bytearray()
        self.encode_into(rows, out)
        return bytes(out)

    def _packed_rows(self, rows: Sequence[Sequence[Any]]) -> bytearray | None:
        """Rows through the row template, or through the row path when it refuses them.

        None when the rows' lengths do not fit (the row path raises saying which).
        """
        assert self._template is not None
        if not rows or set(map(len, rows)) != {self._count}:
            return None
        packed = self._template.pack(rows)
        if packed is None:
            # A chunk the template refuses is refused by the column path too (the same
            # conversion of times, the same struct codes for the rest): the row path.
            packed = bytearray().join(map(self.encode_row, rows))
        return packed

    def encode_into(self, rows: Sequence[Sequence[Any]], out: bytearray) -> None:
        """Append the binary form of ``rows`` to ``out``; the fastest path that fits.

        Raises
        ------
        ValueError, TypeError
            A row of the wrong length, or a value its column cannot hold (``out`` may
            then hold part of the chunk).
        """
        if not rows:
            return
        lengths_fit = set(map(len, rows)) == {self._count}
        if self._formatter is not None and lengths_fit:
            try:
                self._formatter.format_into(rows, out)
                return
            except Exception:  # noqa: S110 - refused by psycopg: lab-db's encoder decides
                pass
        if self._template is not None and lengths_fit:
            packed = self._packed_rows(rows)
            assert packed is not None
            out += packed
            return
        if self.fast and lengths_fit:
            columns = [[row[index] for row in rows] for index in range(self._count)]
            encoded = self._fixed_columns(columns, len(rows))
            if encoded is not None:
                out += encoded
                return
        out += b"".join(map(self.encode_row, rows))

    def encode_columns(self, columns: Sequence[Any]) -> bytes:
        """Return the binary form of rows given column by column (no header or trailer).

        Parameters
        ----------
        columns : sequence
            One entry per column, all of the same length: a sequence of values, a buffer
            (``array.array``, ``memoryview``) or a numpy array. ``datetime64`` arrays are
            UTC (numpy's convention); numbers in a time column are Unix seconds; None
            (and NaT) is NULL.

        Raises
        ------
        ValueError, TypeError
            Columns of different lengths, or a value its column cannot hold.
        """
        if len(columns) != self._count:
            raise ValueError(f"{len(columns)} columns given for {self._count} columns")
        lengths = {len(column) for column in columns}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        count = lengths.pop() if lengths else 0
        if count == 0:
            return b""
        if self.fast:
            encoded = self._fixed_columns(list(columns), count)
            if encoded is not None:
                return encoded
        rows = zip(*(_as_sequence(column) for column in columns), strict=True)
        return b"".join(map(self.encode_row, rows))

    def _fixed_columns(self, columns: list[Any], count: int) -> bytes | None:
        """Encode columns of fixed-size types; None when a value needs the row path.

        The row path then either encodes the value or raises the error naming it.
        """
        if sys.modules.get("numpy") is None:
            return self._packed(columns)
        raws = []
        for column, kind in zip(columns, self._kinds, strict=True):
            raw = _network_bytes(column, kind, count)
            if raw is None:
                return None
            raws.append(raw)
        return _interleave(raws, self._kinds, count)

    def _packed(self, columns: list[Any]) -> bytes | None:
        """Rows packed by one ``struct`` per row, in a C loop over the columns (no numpy)."""
        args: list[Iterable[Any]] = [itertools.repeat(self._count)]
        for column, kind in zip(columns, self._kinds, strict=True):
            values = _checked_values(column, kind)
            if values is None:
                return None
            args += [itertools.repeat(kind.size), values]
        try:
            return b"".join(map(self._row_struct.pack, *args))
        except (struct.error, TypeError, ValueError, OverflowError):
            return None


def _as_sequence(column: Any) -> Sequence[Any]:
    """Return a column as Python values (numpy arrays and buffers through ``tolist``)."""
    if hasattr(column, "tolist"):
        values: Sequence[Any] = column.tolist()
        if getattr(getattr(column, "dtype", None), "kind", "") == "M":
            # datetime64 -> int nanoseconds or datetime; both are UTC here
            return [_utc(value) for value in values]
        return values
    return cast("Sequence[Any]", column)


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, int) and not isinstance(value, bool):  # datetime64[ns] -> int ns
        return PG_EPOCH + dt.timedelta(microseconds=value // 1000 - PG_EPOCH_UNIX * 1_000_000)
    return value


def _numpy_bytes(column: Any, kind: ColumnType, count: int) -> bytes | None:
    """Return a numpy column's big-endian bytes when its dtype maps exactly, else None."""
    numpy = sys.modules.get("numpy")
    dtype = getattr(column, "dtype", None)
    if numpy is None or dtype is None or column.ndim != 1:
        return None
    code = kind.struct_code or ""
    if kind.is_time and dtype.kind == "M":
        if numpy.isnat(column).any():
            return None  # NaT is NULL: the row path
        micros = column.astype("datetime64[us]").astype(numpy.int64)
        return bytes((micros - PG_EPOCH_UNIX * 1_000_000).astype(">i8").data)
    exact = {"d": "f8", "q": "i8", "i": "i4", "h": "i2"}.get(code)
    if exact is not None and not kind.is_time and dtype.str[1:] == exact:
        return bytes(column.astype(f">{exact}").data)
    return None


def _checked_values(column: Any, kind: ColumnType) -> Sequence[Any] | None:
    """Return a column's values ready for its fixed-size form; None: the row path decides.

    Times become microseconds; booleans and reals are converted and checked one by one
    (``array('b')`` takes 2, ``array('f')`` turns 1e39 into inf).
    """
    values = _as_sequence(column)
    try:
        if kind.is_time:
            return _micros(values)
        if kind.struct_code in ("?", "f"):
            values = [kind.convert(value) for value in values]
            if kind.struct_code == "f" and any(_FLOAT4_MAX < abs(v) < math.inf for v in values):
                return None
    except (TypeError, ValueError, OverflowError):
        return None
    return values


def _network_bytes(column: Any, kind: ColumnType, count: int) -> bytes | None:
    """Return one column's values in network order, ``kind.size`` bytes each (None: row path)."""
    raw = _numpy_bytes(column, kind, count)
    if raw is not None:
        return raw
    values = _checked_values(column, kind)
    if values is None:
        return None
    try:
        data = array.array(_ARRAY_CODES[kind.struct_code or ""], values)
    except (TypeError, ValueError, OverflowError):
        return None
    if data.itemsize != kind.size:  # a platform with other C type sizes
        return None
    if sys.byteorder == "little":
        data.byteswap()
    return data.tobytes()


def _micros(values: Sequence[Any]) -> list[int]:
    """Microseconds since 2000-01-01 UTC; aware datetimes in C loops, others one by one."""
    try:
        deltas = map(operator.sub, values, itertools.repeat(PG_EPOCH))
        return list(map(operator.floordiv, deltas, itertools.repeat(_MICROSECOND)))
    except TypeError:  # naive datetimes (local time), Unix seconds
        pass
    return [to_pg_micros(value) for value in values]


def _interleave(raws: list[bytes], kinds: list[ColumnType], count: int) -> bytes:
    """Rows from columns in one structured numpy array (numpy already imported)."""
    numpy = sys.modules["numpy"]
    fields = [("n", ">i2")]
    for index, kind in enumerate(kinds):
        fields += [(f"l{index}", ">i4"), (f"v{index}", f"V{kind.size}")]
    rows = numpy.empty(count, dtype=numpy.dtype(fields))
    rows["n"] = len(kinds)
    for index, (kind, raw) in enumerate(zip(kinds, raws, strict=True)):
        rows[f"l{index}"] = kind.size
        rows[f"v{index}"] = numpy.frombuffer(raw, dtype=f"V{kind.size}")
    return bytes(rows.data)


class CopyStream:
    """A file-like reader over the binary COPY data of ``rows`` (for ``copy_expert``).

    Encodes lazily, ``chunk_rows`` at a time, so a million rows never sit in memory at
    once; each :meth:`read` hands over one encoded chunk (psycopg2 sends whatever length
    ``read`` returns), so no byte is copied twice.

    Without ``overlap``, each chunk is encoded when psycopg2 asks for it; the client's
    encoding and the server's parsing still run side by side, because psycopg2 returns
    as soon as a chunk is in the socket's buffer and the server parses it from there while
    the next one is encoded. With ``overlap`` (the default), a thread encodes the next
    chunks while psycopg2 sends the current one (it lets go of the interpreter while
    sending); at most ``ahead`` encoded chunks wait in memory. The thread costs more than
    it overlaps when encoding is the slower side (0.05-0.07 us of client CPU per row on
    two cores, for handing chunks and the interpreter between the threads), so
    :meth:`~lab_utils.database.Database.insert_many` and ``insert_columns`` go without it.
    """

    def __init__(
        self,
        encoder: RowEncoder,
        rows: Iterable[Sequence[Any]],
        chunk_rows: int = 2_000,
        *,
        overlap: bool = True,
        ahead: int = 4,
    ) -> None:
        self._encoder = encoder
        self._rows = iter(rows)
        self._chunk_rows = chunk_rows
        self._started = False
        self._done = False
        self.rows = 0
        """Rows encoded so far."""
        self.error: Exception | None = None
        """What stopped the encoding (a bad row), to re-raise instead of the COPY failure."""
        self._overlap = overlap
        self._ahead = ahead
        self._queue: queue.Queue[bytes | BaseException | None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _next_chunk(self) -> bytes:
        chunk = list(itertools.islice(self._rows, self._chunk_rows))
        data = self._encoder.encode_chunk(chunk)
        self.rows += len(chunk)
        self._done = len(chunk) < self._chunk_rows
        return self._framed(data)

    def _framed(self, data: bytes) -> bytes:
        """Return ``data`` after the header (first chunk) and before the trailer (last)."""
        if not self._started or self._done:
            header = b"" if self._started else HEADER
            data = b"".join((header, data, TRAILER if self._done else b""))
        self._started = True
        return data

    def _hand_over(self, item: bytes | BaseException | None) -> None:
        """Queue ``item`` for the reading thread, unless the COPY was stopped."""
        assert self._queue is not None
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _produce(self) -> None:
        """Run the encoding thread: chunks into the queue, then None (or the error)."""
        try:
            while not self._done and not self._stop.is_set():
                self._hand_over(self._next_chunk())
        except BaseException as error:  # handed to the reading thread, raised there
            self._hand_over(error)
            return
        self._hand_over(None)

    def read(self, size: int = -1) -> bytes:
        """Return the next encoded chunk (``b''`` at the end); ``size`` is only a hint."""
        if not self._overlap:
            if self._done:
                return b""
            try:
                return self._next_chunk()
            except Exception as error:
                self.error = error
                raise
        if self._thread is None:
            self._queue = queue.Queue(self._ahead)
            self._thread = threading.Thread(
                target=self._produce, name="lab-db COPY encoder", daemon=True
            )
            self._thread.start()
        assert self._queue is not None
        item = self._queue.get()
        if item is None:
            return b""
        if isinstance(item, BaseException):
            if isinstance(item, Exception):
                self.error = item
            raise item
        return item

    def close(self) -> None:
        """Stop the encoding thread (a COPY that ended early) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def readline(self, size: int = -1) -> bytes:
        """Binary COPY has no lines; psycopg2 only calls :meth:`read`."""
        return self.read(size)


class ColumnStream(CopyStream):
    """A file-like reader over the binary COPY data of columns, ``chunk_rows`` at a time."""

    def __init__(
        self,
        encoder: RowEncoder,
        columns: Sequence[Any],
        chunk_rows: int = 10_000,
        *,
        overlap: bool = True,
    ) -> None:
        super().__init__(encoder, (), chunk_rows, overlap=overlap)
        self._columns = columns
        lengths = {len(column) for column in columns}
        if len(columns) != len(encoder.types) or len(lengths) > 1:
            # encode_columns says what is wrong
            encoder.encode_columns(columns)
        self._total = lengths.pop() if lengths else 0

    def _next_chunk(self) -> bytes:
        start = self.rows
        stop = min(start + self._chunk_rows, self._total)
        data = self._encoder.encode_columns([column[start:stop] for column in self._columns])
        self.rows = stop
        self._done = stop >= self._total
        return self._framed(data)


def copy_data(body: bytes | bytearray) -> bytes:
    """Return the complete binary COPY data of encoded rows: header, rows, trailer."""
    return b"".join((HEADER, body, TRAILER))


class EncodedStream:
    """A file-like reader over complete binary COPY data made beforehand (:func:`copy_data`).

    The buffered writer encodes rows as they are added; the whole batch is handed to
    psycopg2 in one read.
    """

    def __init__(self, data: bytes, rows: int) -> None:
        self._data = data
        self.rows = rows
        """Rows in the data."""
        self.error: Exception | None = None
        """Always None: the rows were encoded (and checked) beforehand."""

    def read(self, size: int = -1) -> bytes:
        """Return all the data, then ``b''``; ``size`` is only a hint."""
        data, self._data = self._data, b""
        return data

    def readline(self, size: int = -1) -> bytes:
        """Binary COPY has no lines; psycopg2 only calls :meth:`read`."""
        return self.read(size)

    def close(self) -> None:
        """Nothing to stop."""
