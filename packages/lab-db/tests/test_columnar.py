"""Columnar input: one sequence, buffer or numpy array per column, the same rows as insert_many."""

from __future__ import annotations

import array
import datetime as dt
import math
import sys
from typing import Any

import numpy
import pytest

from lab_utils.database import Database
from lab_utils.database.binary_copy import RowEncoder

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
TYPES = ["timestamp with time zone", "double precision", "bigint", "integer", "real", "boolean"]
COLUMNS = ["time", "v", "n", "i", "r", "b"]


def _table(db: Database, name: str) -> None:
    with db.transaction("table") as cursor:
        cursor.execute(
            f"CREATE TABLE {name} (time timestamptz, v float8, n bigint, i integer,"
            " r real, b boolean)"
        )


def _read(raw: Any, table: str) -> list[tuple[Any, ...]]:
    with raw.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY time, n")
        return cursor.fetchall()


def _python_columns(count: int) -> list[list[Any]]:
    return [
        [T0 + dt.timedelta(microseconds=7 * k) for k in range(count)],
        [k / 3 for k in range(count)],
        [k * 1_000_003 for k in range(count)],
        [-k for k in range(count)],
        [k / 4 for k in range(count)],
        [k % 3 == 0 for k in range(count)],
    ]


def _numpy_columns(count: int) -> list[Any]:
    start = numpy.datetime64("2026-01-01T00:00:00", "us")
    return [
        start + numpy.arange(count) * numpy.timedelta64(7, "us"),
        numpy.arange(count) / 3,
        numpy.arange(count, dtype=numpy.int64) * 1_000_003,
        -numpy.arange(count, dtype=numpy.int32),
        (numpy.arange(count) / 4).astype(numpy.float32),
        numpy.arange(count) % 3 == 0,
    ]


def test_numpy_python_and_buffer_columns_store_the_same_rows(db: Database, raw: Any) -> None:
    count = 25_000  # more than one chunk
    python = _python_columns(count)
    buffers = [python[0], array.array("d", python[1]), memoryview(array.array("q", python[2])),
               array.array("i", python[3]), array.array("f", python[4]), python[5]]  # fmt: skip
    for table, data in [("rows", None), ("python", python), ("numpy", _numpy_columns(count)),
                        ("buffers", buffers)]:  # fmt: skip
        _table(db, table)
        if data is None:
            rows = [list(row) for row in zip(*python, strict=True)]
            assert db.insert_many(table, COLUMNS, rows) == count
        else:
            assert db.insert_columns(table, COLUMNS, data) == count
    expected = _read(raw, "rows")
    assert expected[1] == (T0 + dt.timedelta(microseconds=7), 1 / 3, 1_000_003, -1, 0.25, False)
    for table in ("python", "numpy", "buffers"):
        assert _read(raw, table) == expected, table


def test_columns_give_the_bytes_of_rows_with_and_without_numpy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    python = _python_columns(3000)
    rows = [list(row) for row in zip(*python, strict=True)]
    encoder = RowEncoder(TYPES, accelerate=False)
    expected = b"".join(map(encoder.encode_row, rows))
    with_numpy = encoder.encode_columns(python)
    monkeypatch.delitem(sys.modules, "numpy")  # the rows are interleaved without it
    assert encoder.encode_columns(python) == with_numpy == expected
    assert encoder.encode_chunk(rows) == expected


def test_nulls_and_nat_in_columns_are_null(db: Database, raw: Any) -> None:
    _table(db, "gauge")
    times = numpy.array(["2026-01-01T00:00:01", "NaT", "2026-01-01T00:00:03"], "datetime64[us]")
    data = [times, [1.5, None, math.nan], numpy.array([1, 2, 3]), [None, None, 4],
            [None, 0.5, None], [True, None, False]]  # fmt: skip
    assert db.insert_columns("gauge", COLUMNS, data) == 3
    got = _read(raw, "gauge")
    assert got[0] == (T0 + dt.timedelta(seconds=1), 1.5, 1, None, None, True)
    assert got[1][0] == T0 + dt.timedelta(seconds=3) and math.isnan(got[1][1])
    assert got[1][2:] == (3, 4, None, False)
    assert got[2] == (None, None, 2, None, 0.5, None)


def test_unix_seconds_in_a_time_column(db: Database, raw: Any) -> None:
    _table(db, "gauge")
    seconds = numpy.array([T0.timestamp(), T0.timestamp() + 0.5])
    data = [seconds, [1.0, 2.0], [1, 2], [1, 2], [1.0, 2.0], [True, False]]
    assert db.insert_columns("gauge", COLUMNS, data) == 2
    assert [row[0] for row in _read(raw, "gauge")] == [T0, T0 + dt.timedelta(seconds=0.5)]


@pytest.mark.parametrize(
    ("column", "bad", "error"),
    [
        (1, "n/a", ValueError),
        (2, 1.5, ValueError),
        (3, 2**31, ValueError),
        (4, 1e39, ValueError),
        (5, 2, ValueError),
        (0, "yesterday", TypeError),
    ],
)
def test_a_bad_value_in_a_column_writes_nothing(
    db: Database, raw: Any, column: int, bad: Any, error: type[Exception]
) -> None:
    _table(db, "gauge")
    data: list[Any] = [list(c) for c in _python_columns(30_000)]
    data[column][20_000] = bad
    with pytest.raises(error):
        db.insert_columns("gauge", COLUMNS, data)
    assert _read(raw, "gauge") == []


def test_columns_of_different_lengths_are_refused(db: Database, raw: Any) -> None:
    _table(db, "gauge")
    data = _python_columns(10)
    data[2] = data[2][:9]
    with pytest.raises(ValueError, match="different lengths"):
        db.insert_columns("gauge", COLUMNS, data)
    with pytest.raises(ValueError, match="5 columns given for 6"):
        db.insert_columns("gauge", COLUMNS, data[:5])
    assert _read(raw, "gauge") == []
