"""The COPY data paths give one result: psycopg 3's C formatter, column by column, row by row."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import psycopg2
import pytest

from lab_utils.database import Database, fast_rows
from lab_utils.database.binary_copy import RowEncoder
from lab_utils.database.column_types import REGISTRY

UTC = dt.timezone.utc
PLUS2 = dt.timezone(dt.timedelta(hours=2))
T0 = dt.datetime(2026, 3, 29, 0, 30, 0, 123456, tzinfo=UTC)  # a DST change in Europe

# Every column type of the registry, with values of every kind it accepts (None is NULL).
SAMPLES: dict[str, list[Any]] = {
    "boolean": [True, False, None, 1, 0, "yes", "off"],
    "smallint": [0, -32768, 32767, None, True, 7.0, "12", decimal.Decimal(3)],
    "integer": [0, -(2**31), 2**31 - 1, None, 5.0, " 42 "],
    "bigint": [0, -(2**63), 2**63 - 1, None, False, 9.0, "-17"],
    "real": [0.5, -1.25, math.inf, -math.inf, None, 3, "NaN", decimal.Decimal("2.5")],
    "double precision": [0.1, math.inf, None, 7, True, "-inf", decimal.Decimal("0.1"), 1e308],
    "text": ["", "température ✓", None, "a\tb\nc", 42, 1.5],
    "character varying": ["x", None, "ünïcode", 7],
    "timestamp with time zone": [
        T0,
        T0.astimezone(PLUS2),
        T0.replace(tzinfo=None),
        None,
        1_700_000_000.25,
        0,
        T0,
    ],
    "timestamp without time zone": [T0, T0.replace(tzinfo=None), None, 1_700_000_000, T0],
}
# Values no path may accept.
BAD: dict[str, list[Any]] = {
    "boolean": [2, "maybe", 0.5],
    "smallint": [32768, 2.5, "x"],
    "integer": [2**31, -(2**31) - 1],
    "bigint": [2**63, 1.5],
    "real": [1e39, "n/a"],
    "double precision": ["n/a", b"1", [1.0]],
    "text": [b"bytes"],
    "character varying": [b"bytes"],
    "timestamp with time zone": ["yesterday", dt.date(2026, 1, 1)],
    "timestamp without time zone": ["yesterday"],
}


def _column(kind: str, count: int) -> list[Any]:
    values = SAMPLES[kind]
    return [values[n % len(values)] for n in range(count)]


def _rows(kinds: list[str], count: int) -> list[list[Any]]:
    columns = [_column(kind, count) for kind in kinds]
    return [list(row) for row in zip(*columns, strict=True)]


@contextlib.contextmanager
def _local_zone(name: str) -> Iterator[None]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()


@pytest.fixture
def berlin() -> Iterator[None]:
    """Local time is Europe/Berlin: naive datetimes are not UTC here."""
    with _local_zone("Europe/Berlin"):
        yield


@pytest.fixture(params=["numpy imported", "numpy absent"])
def numpy_or_not(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both columnar ways: numpy arrays when numpy is imported, ``struct`` otherwise."""
    if request.param == "numpy absent":
        monkeypatch.delitem(sys.modules, "numpy", raising=False)
    else:
        import numpy  # noqa: F401 - imported is the state under test


def test_the_extra_is_installed_for_the_tests() -> None:
    # The comparisons below would compare a path with itself without it.
    assert fast_rows.AVAILABLE
    assert RowEncoder(["timestamp with time zone", "double precision"]).accelerated
    assert not RowEncoder(["double precision"], accelerate=False).accelerated
    assert not RowEncoder(["integer"]).accelerated  # psycopg 3 would wrap 2**31


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_type_gives_the_same_bytes_on_every_path(
    kind: str, berlin: None, numpy_or_not: None
) -> None:
    types = ["timestamp with time zone", kind, "double precision"]
    rows = _rows(types, 50)
    fast, plain = RowEncoder(types), RowEncoder(types, accelerate=False)
    expected = b"".join(map(plain.encode_row, rows))
    assert fast.encode_chunk(rows) == expected
    assert plain.encode_chunk(rows) == expected
    assert fast.encode_columns([list(c) for c in zip(*rows, strict=True)]) == expected


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_the_fast_plain_rows_give_the_same_bytes_on_every_path(
    kind: str, numpy_or_not: None
) -> None:
    # Without NULLs or conversions: the chunk takes the C formatter or the columnar path.
    plain_values = {
        "boolean": [True, False], "smallint": [1, -2], "integer": [3, -4], "bigint": [5, 2**40],
        "real": [0.5, -2.0], "double precision": [0.1, 1e300], "text": ["a", "bé"],
        "character varying": ["c", ""], "timestamp with time zone": [T0, T0.astimezone(PLUS2)],
        "timestamp without time zone": [T0, T0 + dt.timedelta(days=400)],
    }[kind]  # fmt: skip
    types = ["timestamp with time zone", kind]
    rows = [[T0 + dt.timedelta(microseconds=n), plain_values[n % 2]] for n in range(1000)]
    fast, plain = RowEncoder(types), RowEncoder(types, accelerate=False)
    expected = b"".join(map(plain.encode_row, rows))
    assert fast.encode_chunk(rows) == plain.encode_chunk(rows) == expected


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, values in BAD.items() for v in values])
def test_every_path_refuses_the_same_values(kind: str, value: Any, numpy_or_not: None) -> None:
    types = ["timestamp with time zone", kind]
    rows = [[T0, SAMPLES[kind][0]]] * 10 + [[T0, value]]
    for encoder in (RowEncoder(types), RowEncoder(types, accelerate=False)):
        with pytest.raises((ValueError, TypeError)):
            encoder.encode_chunk(rows)
        with pytest.raises((ValueError, TypeError)):
            encoder.encode_columns([[T0] * 11, [SAMPLES[kind][0]] * 10 + [value]])


def test_a_row_of_the_wrong_length_is_refused_on_every_path() -> None:
    types = ["timestamp with time zone", "double precision"]
    for encoder in (RowEncoder(types), RowEncoder(types, accelerate=False)):
        with pytest.raises(ValueError, match="row has 3 values for 2 columns"):
            encoder.encode_chunk([[T0, 1.0], [T0, 1.0, 2.0]])


BERLIN = ZoneInfo("Europe/Berlin")
# Times at the edges of the microsecond arithmetic: the two epochs, before both, the
# ends of datetime's range, microsecond roll-overs, both sides of a DST change and its
# repeated hour (fold), fixed offsets.
EDGE_TIMES: list[dt.datetime] = [
    dt.datetime(1970, 1, 1, tzinfo=UTC),
    dt.datetime(1970, 1, 1, tzinfo=UTC) - dt.timedelta(microseconds=1),
    dt.datetime(2000, 1, 1, tzinfo=UTC),
    dt.datetime(2000, 1, 1, tzinfo=UTC) - dt.timedelta(microseconds=1),
    dt.datetime(2000, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=1),
    dt.datetime(1900, 6, 30, 23, 59, 59, 999_999, tzinfo=UTC),
    dt.datetime(1, 1, 1, tzinfo=UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    dt.datetime(2262, 4, 11, 23, 47, 16, 854_775, tzinfo=UTC),
    dt.datetime(2026, 3, 29, 1, 59, 59, 999_999, tzinfo=BERLIN),
    dt.datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN),
    dt.datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN),
    dt.datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN),
    dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-9, minutes=-30))),
    T0.astimezone(PLUS2),
]


@pytest.mark.parametrize("encoder_kind", ["fast", "plain"])
def test_rows_of_times_and_numbers_give_the_bytes_of_the_row_path(
    encoder_kind: str, berlin: None, numpy_or_not: None
) -> None:
    # Rows of times, doubles and integers are packed straight from the rows: the same
    # bytes as one row at a time, for every time and number at its edges.
    types = ["timestamp with time zone", "double precision", "bigint", "integer", "smallint"]
    numbers = [
        [0.0, 0, 0, 0], [-0.0, -(2**63), -(2**31), -32768], [math.nan, 2**63 - 1, 2**31 - 1, 32767],
        [math.inf, True, False, 7], [-math.inf, 1, -1, -1], [5e-324, 2**53 + 1, 12, 1],
    ]  # fmt: skip
    rows = [[time, *numbers[n % len(numbers)]] for n, time in enumerate(EDGE_TIMES * 3)]
    encoder = RowEncoder(types, accelerate=encoder_kind == "fast")
    expected = b"".join(map(encoder.encode_row, rows))
    assert encoder.encode_chunk(rows) == expected
    assert encoder.encode_chunk([tuple(row) for row in rows]) == expected
    # The same with the time column last and a time without zone given naive (local time).
    types = ["double precision", "timestamp without time zone", "timestamp with time zone"]
    # (Not at the ends of datetime's range: a naive one there has no local time.)
    inside = [time for time in EDGE_TIMES if 1 < time.year < 9999]
    rows = [[1.5, time.replace(tzinfo=None), time] for time in inside]
    encoder = RowEncoder(types, accelerate=encoder_kind == "fast")
    assert encoder.encode_chunk(rows) == b"".join(map(encoder.encode_row, rows))


@pytest.mark.parametrize(
    "odd",
    [None, "2.5", decimal.Decimal("0.1"), 1_700_000_000.5, T0.replace(tzinfo=None)],
    ids=["NULL", "text", "decimal", "unix-seconds", "naive"],
)
def test_a_chunk_with_one_odd_value_gives_the_bytes_of_the_row_path(
    odd: Any, berlin: None, numpy_or_not: None
) -> None:
    # One value the row template does not take as it is (anywhere in the chunk) sends the
    # chunk through the row path: NULLs, conversions and local times as before.
    types = ["timestamp with time zone", "double precision", "bigint"]
    for column in (0, 1, 2):
        rows: list[list[Any]] = [[T0 + dt.timedelta(seconds=n), n / 3, n] for n in range(500)]
        if column == 2 and isinstance(odd, (str, float, decimal.Decimal)):
            odd_value: Any = 7 if isinstance(odd, float) else odd
        else:
            odd_value = odd
        if column == 0 and isinstance(odd, (str, decimal.Decimal)):
            continue  # not a time
        rows[499 - column * 200][column] = odd_value
        encoder = RowEncoder(types, accelerate=False)
        try:
            expected = b"".join(map(encoder.encode_row, rows))
        except (TypeError, ValueError) as error:
            with pytest.raises(type(error)):
                encoder.encode_chunk(rows)
        else:
            assert encoder.encode_chunk(rows) == expected


def _table(db: Database, name: str, kinds: list[str]) -> list[str]:
    columns = [f"c{n}" for n in range(len(kinds))]
    with db.transaction("table") as cursor:
        definition = ", ".join(f"{c} {k}" for c, k in zip(columns, kinds, strict=True))
        cursor.execute(f"CREATE TABLE {name} (n serial, {definition})")
    return columns


def _read(raw: Any, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    with raw.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY n")
        return cursor.fetchall()


def test_every_type_reads_back_the_same_from_every_path(
    db: Database, raw: Any, berlin: None
) -> None:
    kinds = sorted(REGISTRY)
    rows = _rows(kinds, 200)
    tables = {"fast": RowEncoder, "plain": lambda t: RowEncoder(t, accelerate=False)}
    for table, make in tables.items():
        columns = _table(db, table, kinds)
        encoder = make(db.column_types(table, columns))
        assert db.insert_many(table, columns, rows, encoder=encoder) == 200
    columns = [f"c{n}" for n in range(len(kinds))]
    fast, plain = _read(raw, "fast", columns), _read(raw, "plain", columns)
    assert repr(fast) == repr(plain)  # repr: NaN equals itself
    # And what was stored is what the values mean: naive times are local (Berlin) times.
    times = dict(zip(kinds, zip(*fast, strict=True), strict=True))
    tz_column = times["timestamp with time zone"]
    assert tz_column[0] == T0 and tz_column[1] == T0  # the same instant, given in +02:00
    assert tz_column[2] == T0.replace(tzinfo=None).astimezone()  # naive = Berlin time
    assert tz_column[3] is None
    assert tz_column[4] == dt.datetime.fromtimestamp(1_700_000_000.25, UTC)
    assert times["double precision"][:3] == (0.1, math.inf, None)
    assert times["text"][1:3] == ("température ✓", None)


def test_the_plain_path_is_used_without_psycopg_3() -> None:
    """A DAQ node with the default install (psycopg2 only) writes the same bytes."""
    types = ["timestamp with time zone", "double precision", "text", "bigint"]
    rows = [[T0, 1.5, "a", 7], [T0.replace(tzinfo=None), None, None, None], [0, "NaN", 1, True]]
    script = (
        "import sys, datetime\n"
        "sys.modules['psycopg'] = None  # as if not installed\n"
        "from lab_utils.database import fast_rows\n"
        "from lab_utils.database.binary_copy import RowEncoder\n"
        f"encoder = RowEncoder({types!r})\n"
        "assert not fast_rows.AVAILABLE and not encoder.accelerated\n"
        f"print(encoder.encode_chunk({rows!r}).hex())\n"
    )
    env = {**os.environ, "TZ": "UTC"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    with _local_zone("UTC"):
        expected = RowEncoder(types).encode_chunk(rows).hex()
    assert done.stdout.strip() == expected


def test_a_refused_fast_chunk_writes_nothing(db: Database, raw: Any) -> None:
    columns = _table(db, "gauge", ["timestamp with time zone", "double precision"])
    rows = [[T0 + dt.timedelta(seconds=n), float(n)] for n in range(10_000)]
    rows[7_777][1] = "n/a"
    with pytest.raises(ValueError, match="n/a"):
        db.insert_many("gauge", columns, rows)
    assert _read(raw, "gauge", columns) == []
    with pytest.raises(psycopg2.IntegrityError):
        db.insert_many("missing", columns, rows[:1])
