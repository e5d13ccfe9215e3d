"""Batch insert (binary COPY), the buffered writer, and an outage in the middle of ingest."""

from __future__ import annotations

import datetime as dt
import logging
import math
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from lab_utils.database import BufferedWriter, Database, DataType, EmbeddedPostgres, batches
from lab_utils.database.embedded import reachable_temp_dir

DAQ = ["time"] + [f"ch{n}" for n in range(8)]


def _daq_table(db: Database, name: str = "daq") -> None:
    db.create_timescale_db(name)
    for column in DAQ[1:]:
        db.new_column(name, column, DataType.double)


def _count(raw: Any, query: str) -> Any:
    with raw.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchone()[0]


def test_insert_many_round_trips_every_kind_of_value(db: Database, raw: Any) -> None:
    db.create_timescale_db("mix")
    for column, kind in [("d", DataType.double), ("f", DataType.float), ("i", DataType.int),
                         ("s", DataType.short), ("l", DataType.long), ("b", DataType.bool),
                         ("t", DataType.string), ("at", DataType.time)]:  # fmt: skip
        db.new_column("mix", column, kind)
    utc = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)
    zurich = dt.timezone(dt.timedelta(hours=1))
    rows = [
        [utc, 1.25, 0.5, 7, -3, 2**40, True, "température ✓", utc],
        [utc + dt.timedelta(seconds=1), math.nan, math.inf, None, None, None, None, None, None],
        [
            utc.astimezone(zurich) + dt.timedelta(seconds=2),
            -math.inf,
            "NaN",
            0,
            0,
            0,
            False,
            "",
            utc.timestamp(),
        ],
    ]
    assert db.insert_many("mix", ["time", "d", "f", "i", "s", "l", "b", "t", "at"], rows) == 3
    with raw.cursor() as cursor:
        cursor.execute("SELECT time, d, f, i, s, l, b, t, at FROM mix ORDER BY time")
        got = cursor.fetchall()
    assert got[0] == (utc, 1.25, 0.5, 7, -3, 2**40, True, "température ✓", utc)
    assert math.isnan(got[1][1]) and got[1][2] == math.inf and got[1][3:] == (None,) * 6
    assert got[2][0] == utc + dt.timedelta(seconds=2)
    assert got[2][1] == -math.inf and math.isnan(got[2][2]) and got[2][8] == utc


def test_insert_many_naive_times_are_local(db: Database, raw: Any) -> None:
    _daq_table(db)
    naive = dt.datetime(2026, 6, 1, 12, 0, 0)
    db.insert_many("daq", DAQ, [[naive] + [0.0] * 8])
    assert _count(raw, "SELECT time FROM daq") == naive.astimezone()


def test_a_bad_row_writes_nothing(db: Database, raw: Any) -> None:
    _daq_table(db)
    now = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(ValueError):
        db.insert_many("daq", DAQ, [[now] + [1.0] * 8, [now] + ["not a number"] + [1.0] * 7])
    with pytest.raises(ValueError, match="9 columns"):
        db.insert_many("daq", DAQ, [[now, 1.0]])
    assert _count(raw, "SELECT count(*) FROM daq") == 0
    db.insert_many("daq", DAQ, [[now] + [1.0] * 8])
    assert _count(raw, "SELECT count(*) FROM daq") == 1


def _batch_table(db: Database) -> None:
    with db.transaction("bookkeeping") as cursor:
        batches.create(cursor)


def _daq_rows(count: int, first: int = 0) -> list[list[Any]]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    return [[start + dt.timedelta(seconds=first + n)] + [float(n)] * 8 for n in range(count)]


@pytest.mark.parametrize("given", [list, iter], ids=["sequence", "iterator"])
def test_insert_many_batch_id_goes_in_with_its_rows_and_a_repeat_writes_nothing(
    db: Database, raw: Any, caplog: pytest.LogCaptureFixture, given: Any
) -> None:
    _daq_table(db)
    _batch_table(db)
    batch = (batches.BATCH_TABLE, str(uuid.uuid4()))
    assert db.insert_many("daq", DAQ, given(_daq_rows(3)), batch=batch) == 3
    with raw.cursor() as cursor:
        cursor.execute("SELECT table_name, row_count FROM lab_utils_batches WHERE batch_id = %s",
                       (batch[1],))  # fmt: skip
        assert cursor.fetchall() == [("daq", 3)]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lab_utils.database.database"):
        assert db.insert_many("daq", DAQ, given(_daq_rows(3, first=10)), batch=batch) == 0
    assert f"Batch {batch[1]} is already in 'daq': not written twice" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert _count(raw, "SELECT count(*) FROM daq") == 3
    assert _count(raw, "SELECT sum(row_count) FROM lab_utils_batches") == 3
    # The connection is left as it was: no transaction open, autocommit off.
    assert db.connection is not None and not db.connection.autocommit
    assert db.connection.get_transaction_status() == TRANSACTION_STATUS_IDLE
    other = (batches.BATCH_TABLE, str(uuid.uuid4()))
    assert db.insert_many("daq", DAQ, given(_daq_rows(2, first=20)), batch=other) == 2
    assert _count(raw, "SELECT count(*) FROM daq") == 5


@pytest.mark.parametrize("given", [list, iter], ids=["sequence", "iterator"])
def test_insert_many_a_bad_row_records_no_batch_id(db: Database, raw: Any, given: Any) -> None:
    _daq_table(db)
    _batch_table(db)
    batch = (batches.BATCH_TABLE, str(uuid.uuid4()))
    bad = [*_daq_rows(2), [dt.datetime.now(dt.timezone.utc), "not a number"] + [1.0] * 7]
    with pytest.raises(ValueError):
        db.insert_many("daq", DAQ, given(bad), batch=batch)
    assert _count(raw, "SELECT count(*) FROM daq") == 0
    assert _count(raw, "SELECT count(*) FROM lab_utils_batches") == 0
    assert db.connection is not None
    assert db.connection.get_transaction_status() == TRANSACTION_STATUS_IDLE
    # Nothing of the failed attempt is left: the same batch, corrected, goes in once.
    assert db.insert_many("daq", DAQ, given(_daq_rows(3)), batch=batch) == 3
    assert _count(raw, "SELECT count(*) FROM daq") == 3


def test_insert_many_batch_joins_an_open_transaction(db: Database, raw: Any) -> None:
    _daq_table(db)
    _batch_table(db)
    db.new_column("daq", "note", DataType.string)
    batch = (batches.BATCH_TABLE, str(uuid.uuid4()))
    assert db.connection is not None
    with db.connection.cursor() as cursor:  # the caller's statement, not yet committed
        cursor.execute("INSERT INTO daq (time, note) VALUES (now(), 'before')")
    assert db.insert_many("daq", DAQ, _daq_rows(2), batch=batch) == 2
    with db.connection.cursor() as cursor:
        cursor.execute("INSERT INTO daq (time, note) VALUES (now(), 'again')")
    # A known id writes no rows and leaves the caller's statement in place, committed.
    assert db.insert_many("daq", DAQ, _daq_rows(2, first=10), batch=batch) == 0
    assert db.connection.get_transaction_status() == TRANSACTION_STATUS_IDLE
    assert _count(raw, "SELECT count(*) FROM daq WHERE note IS NULL") == 2
    assert _count(raw, "SELECT count(*) FROM daq WHERE note IS NOT NULL") == 2
    assert _count(raw, "SELECT sum(row_count) FROM lab_utils_batches") == 2


def test_writer_from_many_threads_writes_every_row_once(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    _daq_table(db)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    writer = BufferedWriter(
        db, "daq", DAQ, batch_size=500, flush_interval=0.2, spool_dir=tmp_path / "spool"
    )

    def produce(thread: int) -> None:
        for n in range(2500):
            writer.add(
                [start + dt.timedelta(microseconds=thread * 10_000 + n)] + [float(thread)] * 8
            )

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert writer.rows_written == 10_000
    assert _count(raw, "SELECT count(DISTINCT time) FROM daq") == 10_000
    assert _count(raw, "SELECT count(*) FROM daq") == 10_000


@pytest.fixture
def restartable() -> Iterator[EmbeddedPostgres]:
    """A server of the test's own, in a folder that survives a restart."""
    root = reachable_temp_dir("lab-db-outage-")  # run as root, the server's user gets in
    server = EmbeddedPostgres(root / "pg")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_outage_mid_ingest_every_row_exactly_once(
    restartable: EmbeddedPostgres, tmp_path: Path
) -> None:
    db = restartable.database("daq")
    _daq_table(db)
    writer = BufferedWriter(
        db,
        "daq",
        DAQ,
        batch_size=200,
        flush_interval=0.1,
        spool_dir=tmp_path / "spool",
        max_backoff=0.5,
    )
    db.close()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    total = 6000
    for n in range(total):
        writer.add([start + dt.timedelta(milliseconds=n)] + [float(n)] * 8)
        if n == 1500:
            restartable.stop()  # the server goes away in the middle of the ingest
        if n == 4000:
            assert writer.rows_spooled > 0
            restartable.start()
        if n % 500 == 0:
            time.sleep(0.05)  # an acquisition loop, not a tight one
    assert writer.flush(timeout=120)
    writer.close()
    check = restartable.database("daq")
    rows = check.fetch_range("daq", start, start + dt.timedelta(hours=1), ["ch0"])
    check.close()
    assert len(rows) == total
    assert [r[1] for r in rows] == [float(n) for n in range(total)]
    assert writer.rows_lost == 0
    assert not list((tmp_path / "spool").glob("*.jsonl"))


def test_read_back_latest_range_and_averages(db: Database) -> None:
    _daq_table(db)
    start = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    db.insert_many(
        "daq", DAQ, ([start + dt.timedelta(seconds=n)] + [float(n)] * 8 for n in range(120))
    )
    latest = db.fetch_latest("daq", ["ch0"], limit=2)
    assert [r[1] for r in latest] == [119.0, 118.0]
    window = db.fetch_range(
        "daq", start + dt.timedelta(seconds=10), start + dt.timedelta(seconds=13), ["ch1"]
    )
    assert [r[1] for r in window] == [10.0, 11.0, 12.0]
    averages = db.fetch_averages("daq", ["ch0", "ch7"], bucket="1 minute")
    assert averages == [(start, 29.5, 29.5), (start + dt.timedelta(minutes=1), 89.5, 89.5)]
    with pytest.raises(ValueError, match="interval"):
        db.fetch_averages("daq", ["ch0"], bucket="1 minute'); DROP TABLE daq; --")


def test_embedded_server_stops_cleanly() -> None:
    server = EmbeddedPostgres().start()
    process = server._process
    root = server.root
    assert process is not None and process.poll() is None
    server.stop()
    assert process.poll() is not None
    assert not root.exists()


def test_new_entry_commits_each_row_alone_and_a_refused_row_leaves_nothing_open(
    db: Database, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _daq_table(db, "one")
    with raw.cursor() as cursor:
        cursor.execute("ALTER TABLE one ADD CONSTRAINT small CHECK (ch0 < 100)")
    for n in range(3):
        db.new_entry("one", ["ch0", "ch1"], [float(n), 1.0])
        assert _count(raw, "SELECT count(*) FROM one") == n + 1  # committed at once
    with pytest.raises(psycopg2.IntegrityError):
        db.new_entry("one", ["ch0", "ch1"], [1000.0, 1.0])
    assert any("new_entry('one') failed" in r.getMessage() for r in caplog.records)
    assert db.connection is not None and not db.connection.autocommit
    for _ in range(2):  # names are checked on every call, cached or not
        with pytest.raises(ValueError, match="NUL"):
            db.new_entry("one", ["ch0", "ch\x001"], [1.0, 2.0])
        with pytest.raises(psycopg2.ProgrammingError):  # quoted: a column name, not SQL
            db.new_entry("one", ["ch0", 'x"; DROP TABLE one; --'], [1.0, 2.0])
    with db.transaction("two rows") as cursor:  # inside a transaction: part of it
        cursor.execute("INSERT INTO one (ch0) VALUES (50)")
        db.new_entry("one", ["ch0", "ch1"], [51.0, 1.0])
    db.new_entry("one", ("ch0", "ch1"), (7.0, 8.0))
    assert _count(raw, "SELECT count(*) FROM one") == 6
