"""The buffered writer never loses a row silently: bad rows, dead threads, unreachable servers."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from lab_utils.database import (
    BufferedWriter,
    Constraint,
    Database,
    DataType,
    EmbeddedPostgres,
    reachable_temp_dir,
)
from lab_utils.database.binary_copy import RowEncoder
from lab_utils.database.spool import Spool

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
COLUMNS = ["time", "v"]


def _rows(count: int, offset: int = 0) -> list[list[Any]]:
    return [[START + dt.timedelta(seconds=offset + n), float(n)] for n in range(count)]


def _table(db: Database, name: str = "gauge", kind: DataType = DataType.double) -> None:
    db.create_timescale_db(name)
    db.new_column(name, "v", kind, [Constraint.positive])


def _count(raw: Any, table: str = "gauge") -> int:
    with raw.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        return int(cursor.fetchone()[0])


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _rejected(spool: Path) -> list[dict[str, Any]]:
    files = sorted((spool / "rejected").glob("*.jsonl"))
    return [json.loads(line) for path in files for line in path.read_text().splitlines()]


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_a_check_violation_among_1000_good_rows_is_rejected_alone(
    db: Database, raw: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _table(db)
    spool = tmp_path / "spool"
    writer = BufferedWriter(db, "gauge", COLUMNS, batch_size=5000, spool_dir=spool)
    rows = _rows(1000)
    bad = [START - dt.timedelta(days=1), -1.0]  # a valid double the CHECK refuses
    writer.add_many([*rows[:500], bad, *rows[500:]])
    assert writer.flush(timeout=60)
    assert (_count(raw), writer.rows_written, writer.rows_rejected) == (1000, 1000, 1)
    (kept,) = _rejected(spool)
    assert kept["table"] == "gauge" and kept["row"][1] == -1.0
    assert "check constraint" in kept["reason"]
    errors = _records(caplog, logging.ERROR)
    assert len(errors) == 1
    assert "1 row(s) of 'gauge' rejected" in errors[0] and str(spool / "rejected") in errors[0]
    writer.add_many(_rows(10, offset=5000))  # still writing afterwards
    writer.close()
    assert _count(raw) == 1010
    assert writer.stats().rows_rejected == 1


def test_a_wrong_type_is_refused_by_add_once_the_types_are_known(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    _table(db)
    writer = BufferedWriter(db, "gauge", COLUMNS, spool_dir=tmp_path / "spool")
    rows = _rows(1000)
    writer.add_many(rows[:500])
    with pytest.raises(ValueError, match="n/a"):
        writer.add([START, "n/a"])
    with pytest.raises(TypeError, match="not a time"):
        writer.add(["yesterday", 1.0])
    writer.add_many(rows[500:])
    writer.close()
    assert (_count(raw), writer.rows_rejected) == (1000, 0)
    # Nothing of the refused rows went to the server: the batch was not refused and split.
    assert (_transactions(raw), writer.last_error) == ([(1, 1000)], None)


def test_a_wrong_type_the_writer_could_not_check_is_isolated_and_rejected(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    _table(db)
    spool = tmp_path / "spool"
    # Not connected: the writer learns the column types only when its thread connects.
    writer = BufferedWriter(
        db.clone(connect=False), "gauge", COLUMNS, flush_interval=60, spool_dir=spool
    )
    rows = _rows(1000)
    writer.add_many([*rows[:500], [START, "n/a"], *rows[500:]])
    assert writer.flush(timeout=60)
    assert (_count(raw), writer.rows_rejected) == (1000, 1)
    (kept,) = _rejected(spool)
    assert kept["row"][1] == "n/a" and "ValueError" in kept["reason"]
    with pytest.raises(ValueError):  # now the writer knows the types
        writer.add([START, "n/a"])
    writer.add_many(_rows(5, offset=5000))
    writer.close()
    assert _count(raw) == 1005


class _BrokenZone(dt.tzinfo):
    """A time zone whose offset lookup fails: an error nobody plans for."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        raise self.error

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def __repr__(self) -> str:
        return f"_BrokenZone({self.error!r})"


def test_an_unexpected_exception_in_the_thread_is_logged_and_the_writer_carries_on(
    db: Database, raw: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _table(db)
    spool = tmp_path / "spool"
    writer = BufferedWriter(
        db.clone(connect=False), "gauge", COLUMNS, flush_interval=60, spool_dir=spool
    )
    broken = dt.datetime(2026, 1, 1, tzinfo=_BrokenZone(RuntimeError("zone database gone")))
    rows = _rows(1000)
    writer.add_many([*rows[:300], [broken, 1.0], *rows[300:]])
    assert writer.flush(timeout=60)
    assert (_count(raw), writer.rows_rejected) == (1000, 1)
    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert tracebacks and isinstance(tracebacks[0].exc_info[1], RuntimeError)  # type: ignore[index]
    (kept,) = _rejected(spool)
    assert "RuntimeError: zone database gone" in kept["reason"]
    writer.add_many(_rows(5, offset=5000))
    writer.close()
    assert _count(raw) == 1005 and writer.stats().rows_rejected == 1


def test_a_dead_writer_thread_makes_add_flush_and_close_raise(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    _table(db)
    spool = tmp_path / "spool"
    writer = BufferedWriter(
        db.clone(connect=False), "gauge", COLUMNS, flush_interval=0.05, spool_dir=spool
    )
    # SystemExit is not an Exception: nothing in the thread may swallow it.
    writer.add([dt.datetime(2026, 1, 1, tzinfo=_BrokenZone(SystemExit(3))), 1.0])
    _wait_for(lambda: not writer.stats().alive)
    with pytest.raises(RuntimeError, match="has stopped"):
        writer.add(_rows(1)[0])
    with pytest.raises(RuntimeError, match="has stopped"):
        writer.flush()
    with pytest.raises(RuntimeError, match="had stopped"):
        writer.close()
    assert writer.rows_lost == 0


def test_a_writer_thread_killed_mid_copy_keeps_every_row_for_the_next_writer(
    db: Database, raw: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _table(db)
    spool = tmp_path / "spool"
    # Not connected: the rows of the first batches are encoded by the thread, in its COPY,
    # where the value raising SystemExit stops it with several batches in hand and queued.
    writer = BufferedWriter(
        db.clone(connect=False), "gauge", COLUMNS, batch_size=200, flush_interval=60,
        max_queued_batches=50, spool_dir=spool,
    )  # fmt: skip
    killer = [dt.datetime(2026, 1, 1, tzinfo=_BrokenZone(SystemExit(3))), 1.0]
    rows = _rows(4000)
    accepted = 0
    with pytest.raises(RuntimeError, match="has stopped"):
        for row in [*rows[:50], killer, *rows[50:]]:
            writer.add(row)
            accepted += 1
        _wait_for(lambda: not writer.stats().alive)
        writer.flush()
    with pytest.raises(RuntimeError, match="had stopped"):
        writer.close()
    assert writer.rows_lost == 0 and writer.rows_spooled > 0
    (death,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    message = death.getMessage()
    assert "stopped (SystemExit: 3)" in message and str(spool) in message
    assert f"{writer.rows_spooled} rows it held were spooled" in message
    assert "1 rejected" in message
    # The killer's time has no text to spool: it is kept in rejected/ with the reason.
    (kept,) = _rejected(spool)
    assert "could not be spooled: SystemExit" in kept["reason"]
    assert kept["row"][1] == 1.0

    with BufferedWriter(db, "gauge", COLUMNS, spool_dir=spool) as after:
        assert after.flush(timeout=60)
    with raw.cursor() as cursor:
        cursor.execute('SELECT count(*), count(DISTINCT "time") FROM gauge')
        count, distinct = cursor.fetchone()
    assert count == distinct == accepted - 1  # every row once, but the one in rejected/
    assert not list(spool.glob("*.jsonl"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def stopped_server() -> Iterator[EmbeddedPostgres]:
    """A server of the test's own with a table ``gauge``, stopped: down from the start."""
    # Run as root, the server runs as another user: its folder must be one it can reach.
    root = reachable_temp_dir("lab-db-down-")
    server = EmbeddedPostgres(root / "pg", port=_free_port())
    server.start()
    db = server.database("daq")
    _table(db)
    db.close()
    server.stop()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def _writer_to(server: EmbeddedPostgres, tmp_path: Path, **options: Any) -> BufferedWriter:
    """A writer of 100-row batches into ``gauge`` of the server's ``daq`` database."""
    target = Database(host=server.host, port=server.port, database="daq", user=server.user)
    return BufferedWriter(
        target, "gauge", COLUMNS, batch_size=100, flush_interval=0.05,
        spool_dir=tmp_path / "spool", **options,
    )  # fmt: skip


def test_a_server_down_from_the_start_is_one_story_and_the_rows_arrive_later(
    stopped_server: EmbeddedPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = stopped_server
    writer = _writer_to(server, tmp_path, max_backoff=0.2, reminder_interval=0.5)
    writer.add_many(_rows(300))
    _wait_for(lambda: writer.rows_spooled == 300)
    _wait_for(
        lambda: any("300 rows spooled so far" in m for m in _records(caplog, logging.WARNING))
    )
    state = writer.stats()
    assert state.spooling and not state.connected and state.backlog_batches == 3
    warnings = _records(caplog, logging.WARNING)
    assert "unavailable" in warnings[0] and "Connection refused" in warnings[0]
    assert "still unavailable" in warnings[-1]
    server.start()
    assert writer.flush(timeout=120)
    writer.close()
    check = server.database("daq")
    assert len(check.fetch_range("gauge", START, START + dt.timedelta(1))) == 300
    check.close()
    warnings = _records(caplog, logging.WARNING)
    assert sum("unavailable (" in m for m in warnings) == 1  # one start, then reminders
    assert "is back after" in warnings[-1] and "300 spooled rows replayed" in warnings[-1]
    assert _records(caplog, logging.ERROR) == []  # no second alarm for the same event
    assert writer.stats().reconnects == 1 and writer.rows_replayed == 300


def _first_warning(target: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> str:
    """Write one row to an unreachable ``target``; return the one WARNING it gives."""
    writer = BufferedWriter(
        target, "gauge", COLUMNS, flush_interval=0.05, spool_dir=tmp_path / "spool"
    )
    writer.add(_rows(1)[0])
    _wait_for(lambda: writer.rows_spooled == 1)
    writer.close(timeout=5)
    (warning, closing) = _records(caplog, logging.WARNING)
    assert "still in the spool" in closing
    return warning


def test_an_unknown_host_is_reported_with_libpq_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = Database(host="no-such-host.invalid", port=5432, database="x", user="y")
    assert "could not translate host name" in _first_warning(nowhere, tmp_path, caplog)


def test_a_wrong_password_is_reported_with_libpq_reason(
    server: EmbeddedPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    admin = psycopg2.connect(server.dsn)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = 'reader'")
        if cursor.fetchone() is None:
            cursor.execute("CREATE ROLE reader LOGIN PASSWORD 'right'")
            hba = server.data_dir / "pg_hba.conf"
            hba.write_text("host all reader 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
            cursor.execute("SELECT pg_reload_conf()")
    admin.close()

    def refused() -> bool:  # the reload is asynchronous: wait until it is in force
        try:
            psycopg2.connect(f"{server.dsn} user=reader password=wrong").close()
        except psycopg2.OperationalError:
            return True
        return False

    _wait_for(refused)
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{server.host}:{server.port}:*:reader:wrong\n")
    passfile.chmod(0o600)
    target = Database(host=server.host, port=server.port, database="postgres", user="reader",
                      passfile=str(passfile))  # fmt: skip
    warning = _first_warning(target, tmp_path, caplog)
    assert 'password authentication failed for user "reader"' in warning


def test_old_batch_ids_are_pruned(db: Database, raw: Any, tmp_path: Path) -> None:
    _table(db)
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE lab_utils_batches (batch_id uuid PRIMARY KEY, table_name text NOT NULL,"
            " row_count integer NOT NULL, written_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor.execute(
            "INSERT INTO lab_utils_batches VALUES"
            " (gen_random_uuid(), 'gauge', 1, now() - interval '30 days'),"
            " (gen_random_uuid(), 'gauge', 1, now() - interval '1 day')"
        )
    writer = BufferedWriter(
        db, "gauge", COLUMNS, spool_dir=tmp_path / "spool", keep_batch_ids=dt.timedelta(days=7)
    )
    writer.add_many(_rows(10))
    writer.close()
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM lab_utils_batches WHERE written_at < now() - interval '7 days'"
        )
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT count(*) FROM lab_utils_batches")
        assert cursor.fetchone() == (2,)  # the recent one and the new batch


def test_add_takes_plain_rows_on_their_types_and_still_refuses_every_bad_value(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    db.create_timescale_db("mixed")
    for column, kind in [("v", DataType.double), ("n", DataType.long), ("b", DataType.bool),
                         ("t", DataType.string)]:  # fmt: skip
        db.new_column("mixed", column, kind)
    columns = ["time", "v", "n", "b", "t"]
    writer = BufferedWriter(db, "mixed", columns, spool_dir=tmp_path / "spool")
    good = [
        [START, 1.5, 7, True, "a"],
        [START, 2, 2**40, False, "b"],  # an int in a float column
        [START.replace(tzinfo=None), None, None, None, None],
        [START.timestamp(), "NaN", "12", "yes", 42],  # converted as insert_many does
    ]
    for row in good:
        writer.add(row)
    bad = [
        ([START, 1.0, 1.5, True, "x"], ValueError),  # a fraction in an integer column
        ([START, 1.0, 2**63, True, "x"], ValueError),
        ([START, 1.0, 1, 2, "x"], ValueError),
        ([START, 1.0, 1, True, b"x"], TypeError),
        ([START, "n/a", 1, True, "x"], ValueError),
        ([START, 1.0, 1, True], ValueError),
    ]
    for row, error in bad:
        with pytest.raises(error):
            writer.add(row)
    with pytest.raises(ValueError, match="n/a"):  # the 100 rows before it are queued
        writer.add_many([good[0]] * 100 + [[START, "n/a", 1, True, "x"]] + [good[0]] * 10)
    writer.add_many([good[0]] * 100)
    writer.close()
    assert (_count(raw, "mixed"), writer.rows_rejected) == (204, 0)


def test_rows_encoded_on_add_store_what_insert_many_stores(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    columns = ["time", "v", "n", "t"]
    for table in ("by_writer", "by_batch"):
        db.create_timescale_db(table)
        for column, kind in [("v", DataType.double), ("n", DataType.long),
                             ("t", DataType.string)]:  # fmt: skip
            db.new_column(table, column, kind)
    # Types the C formatter encodes: add() encodes each row, the thread only sends.
    assert RowEncoder(db.column_types("by_writer", columns)).accelerated
    rows: list[list[Any]] = []
    for n in range(2500):
        rows += [
            [START + dt.timedelta(seconds=n), n / 7, n, f"run {n}"],
            [START.replace(tzinfo=None) + dt.timedelta(seconds=n), "NaN", str(n), None],
            [START.timestamp() + n + 0.5, None, True, n],  # lab-db's conversions
        ]
    writer = BufferedWriter(db, "by_writer", columns, batch_size=1000, spool_dir=tmp_path / "s")
    for row in rows[:3000]:
        writer.add(row)
    with pytest.raises(ValueError, match="n/a"):
        writer.add([START, "n/a", 1, "x"])
    with pytest.raises(TypeError):
        writer.add([START, 1.0, 1, b"bytes"])
    with pytest.raises(ValueError, match="values for 4 columns"):
        writer.add([START, 1.0, 1])
    with pytest.raises(ValueError, match="n/a"):  # the rows before the bad one are queued
        writer.add_many([*rows[3000:4500], [START, "n/a", 1, "x"], *rows[5000:]])
    writer.add_many(rows[4500:])
    writer.close()
    assert writer.rows_written == 7500 and writer.rows_rejected == 0
    db.insert_many("by_batch", columns, rows)
    query = "SELECT time, v::text, n, t FROM {} ORDER BY time, n, t"
    with raw.cursor() as cursor:
        cursor.execute(query.format("by_writer"))
        written = cursor.fetchall()
        cursor.execute(query.format("by_batch"))
        assert written == cursor.fetchall()


def test_memory_stays_bounded_and_full_batches_go_to_disk_during_an_outage(
    stopped_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    server = stopped_server
    writer = _writer_to(server, tmp_path, max_backoff=30, max_queued_batches=2)
    most = 0
    for row in _rows(5000):
        writer.add(row)  # waits for room at most while the thread spools
        most = max(most, writer.stats().rows_queued)
    assert most <= (2 + 1) * 100 + 100  # the full batches allowed, one sealed, the open one
    _wait_for(lambda: writer.rows_spooled == 5000)
    server.start()
    assert writer.flush(timeout=120)
    writer.close()
    assert writer.rows_replayed == 5000 and writer.rows_lost == 0


def test_a_batch_records_its_id_and_row_count_and_a_replayed_id_writes_nothing(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    _table(db)
    rows = [[START + dt.timedelta(seconds=n), float(n + 1)] for n in range(7)]
    folder = tmp_path / "spool"
    batch_id = uuid.uuid4()
    Spool(folder).put(batch_id, rows)
    with BufferedWriter(db, "gauge", COLUMNS, spool_dir=folder) as writer:
        assert writer.flush()
        assert writer.rows_replayed == 7
    with raw.cursor() as cursor:
        cursor.execute("SELECT table_name, row_count FROM lab_utils_batches WHERE batch_id = %s",
                       (str(batch_id),))  # fmt: skip
        assert cursor.fetchall() == [("gauge", 7)]
    # The same batch again, as after a commit whose outcome was lost: skipped, spool emptied.
    Spool(folder).put(batch_id, rows)
    with BufferedWriter(db, "gauge", COLUMNS, spool_dir=folder) as writer:
        assert writer.flush()
        assert (writer.rows_replayed, writer.rows_written, writer.rows_rejected) == (0, 0, 0)
        writer.add(rows[0])  # the connection still writes after the refused id
        assert writer.flush()
        assert writer.rows_written == 1
    assert _count(raw) == 8
    assert not list(folder.glob("*.jsonl"))


def test_a_batch_another_writer_leaves_in_the_spool_is_replayed_while_rows_stream_in(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    _table(db)
    folder = tmp_path / "spool"
    left = [[START - dt.timedelta(seconds=n + 1), float(n + 1)] for n in range(3)]
    streamed = 0
    with BufferedWriter(db, "gauge", COLUMNS, spool_dir=folder, batch_size=10) as writer:
        writer.add_many(_rows(10, offset=1))
        streamed += 10
        _wait_for(lambda: writer.rows_written == 10)
        Spool(folder).put(uuid.uuid4(), left)  # as a writer closing during an outage does
        deadline = time.monotonic() + 60
        while writer.rows_replayed < 3:  # full batches keep the thread busy meanwhile
            assert time.monotonic() < deadline, "the leftover batch was not replayed"
            writer.add_many(_rows(10, offset=1 + streamed))
            streamed += 10
            time.sleep(0.05)
    assert _count(raw) == streamed + 3
    assert not list(folder.glob("*.jsonl"))


def _number(raw: Any, query: str) -> int:
    with raw.cursor() as cursor:
        cursor.execute(query)
        return int(cursor.fetchone()[0])


def _copy_progress(raw: Any) -> int:
    """Rows a COPY still under way into this database has processed so far."""
    return _number(raw, "SELECT coalesce(sum(tuples_processed), 0) FROM pg_stat_progress_copy"
                        " WHERE datname = current_database()")  # fmt: skip


def _filling_writer(db: Database, spool: Path, **options: Any) -> BufferedWriter:
    """A writer whose batch completes only on flush() (or on the given interval)."""
    settings: dict[str, Any] = {"batch_size": 100_000, "flush_interval": 600, **options}
    return BufferedWriter(db, "gauge", COLUMNS, spool_dir=spool, **settings)


def _recorded_counts(raw: Any) -> list[int]:
    with raw.cursor() as cursor:
        cursor.execute("SELECT row_count FROM lab_utils_batches ORDER BY written_at")
        return [count for (count,) in cursor.fetchall()]


def test_a_batch_is_sent_while_it_fills_and_commits_whole_with_its_row_count(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    _table(db)
    writer = _filling_writer(db, tmp_path / "spool")
    rows = _rows(5000)
    for row in rows[:3000]:
        writer.add(row)
    # The server has the first chunks before the batch is complete; nothing is committed.
    _wait_for(lambda: _copy_progress(raw) >= 1000)
    assert _count(raw) == 0 and writer.stats().rows_queued == 3000
    for row in rows[3000:]:
        writer.add(row)
    assert writer.flush()
    assert (_count(raw), writer.rows_written, writer.stats().rows_queued) == (5000, 5000, 0)
    assert _recorded_counts(raw) == [5000]
    writer.add_many(_rows(2500, offset=5000))  # add_many fills the next batch the same way
    writer.close()
    assert _count(raw) == 7500 and _recorded_counts(raw) == [5000, 2500]


def test_a_batch_being_sent_is_completed_by_the_flush_interval(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    _table(db)
    writer = _filling_writer(db, tmp_path / "spool", flush_interval=0.5)
    for row in _rows(1500):
        writer.add(row)
    _wait_for(lambda: _count(raw) == 1500)  # no flush(): the interval ends the batch
    writer.close()
    assert _recorded_counts(raw) == [1500]


def test_full_batches_are_committed_when_the_producer_pauses_not_at_the_flush_interval(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    # The COPY under way takes on the next batch while it is empty, for a producer about to
    # fill it; one that pauses must not leave the full batches uncommitted for 600 s.
    _table(db)
    writer = _filling_writer(db, tmp_path / "spool", batch_size=2048)
    _stream_in(writer, raw, _rows(2 * 2048))  # two full batches, streamed, then a pause
    _wait_for(lambda: _count(raw) == 4096, timeout=30)
    assert _transactions(raw) == [(2, 4096)]
    writer.close()


class _CountingLoops(BufferedWriter):
    """A writer counting its thread's rounds (each ends in ``_maintain``)."""

    rounds = 0

    def _maintain(self) -> None:
        self.rounds += 1
        super()._maintain()


def test_an_idle_writer_sleeps_until_a_row_comes(db: Database, raw: Any, tmp_path: Path) -> None:
    # Waking every flush_interval to find nothing cost CPU and took the interpreter from the
    # producers of other writers; the first row wakes the thread instead.
    _table(db)
    writer = _CountingLoops(db, "gauge", COLUMNS, flush_interval=0.02, spool_dir=tmp_path / "s")
    rows = _rows(2)
    writer.add(rows[0])
    assert writer.flush()
    before = writer.rounds
    time.sleep(0.5)  # 25 flush intervals with nothing to write
    assert writer.rounds - before <= 1
    writer.add(rows[1])
    _wait_for(lambda: _count(raw) == 2, timeout=30)  # no flush: the row woke the thread
    writer.close()


def test_a_check_violation_in_a_batch_being_sent_is_rejected_alone(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    _table(db)
    spool = tmp_path / "spool"
    writer = _filling_writer(db, spool)
    rows = _rows(4000)
    for row in rows[:1200]:
        writer.add(row)
    _wait_for(lambda: _copy_progress(raw) >= 1000)  # the batch's COPY is under way
    writer.add([START - dt.timedelta(days=1), -1.0])  # a valid double the CHECK refuses
    for row in rows[1200:]:
        writer.add(row)
    assert writer.flush()
    assert (_count(raw), writer.rows_written, writer.rows_rejected) == (4000, 4000, 1)
    (kept,) = _rejected(spool)
    assert kept["row"][1] == -1.0 and "check constraint" in kept["reason"]
    writer.close()


def test_a_connection_lost_while_a_batch_is_sent_loses_and_doubles_nothing(
    db: Database, raw: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _table(db)
    writer = _filling_writer(db, tmp_path / "spool", max_backoff=0.5)
    rows = _rows(6000)
    for row in rows[:2500]:
        writer.add(row)
    _wait_for(lambda: _copy_progress(raw) >= 1000)
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_progress_copy"
            " WHERE datname = current_database()"
        )
    for row in rows[2500:]:
        writer.add(row)
    assert writer.flush(timeout=60)
    writer.close()
    assert (_count(raw), writer.rows_lost, writer.rows_rejected) == (6000, 0, 0)
    with raw.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT time) FROM gauge")
        assert cursor.fetchone() == (6000,)
    assert writer.rows_spooled == writer.rows_replayed > 0
    assert any("unavailable" in message for message in _records(caplog, logging.WARNING))


def _batches_behind_a_lock(
    db: Database,
    writer: BufferedWriter,
    raw: Any,
    rows: list[Any],
    meanwhile: Callable[[], object] = lambda: None,
) -> None:
    """Hold the table while the writer's first batch waits: ``rows`` pile up in batches.

    ``meanwhile`` runs once they have, before the table is let go.
    """
    blocker = psycopg2.connect(**db.connection_parameters())
    try:
        with blocker.cursor() as cursor:
            cursor.execute("LOCK TABLE gauge IN ACCESS EXCLUSIVE MODE")
        writer.add_many(_rows(100))
        _wait_for(lambda: _copy_waits_for_lock(raw))
        writer.add_many(rows)
        meanwhile()
        blocker.commit()
    finally:
        blocker.close()


def _transactions(raw: Any) -> list[tuple[int, int]]:
    """Batch ids and rows recorded per transaction (ids of one transaction share now())."""
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), sum(row_count) FROM lab_utils_batches"
            " GROUP BY written_at ORDER BY written_at"
        )
        return [(int(ids), int(rows)) for ids, rows in cursor.fetchall()]


@pytest.fixture(params=[DataType.double, DataType.float], ids=["encoded-on-add", "by-thread"])
def small_batches(request: pytest.FixtureRequest, db: Database, tmp_path: Path) -> BufferedWriter:
    """Return a writer of 100-row batches into ``gauge``.

    Double precision rows are encoded by add() (lab-db[fast]), real ones (which psycopg 3
    would not check) by the thread.
    """
    _table(db, kind=request.param)
    on_add = RowEncoder(db.column_types("gauge", COLUMNS)).accelerated
    assert on_add == (request.param is DataType.double)
    return BufferedWriter(db, "gauge", COLUMNS, batch_size=100, spool_dir=tmp_path / "spool")


def test_batches_waiting_for_the_thread_go_in_one_transaction_each_with_its_id(
    db: Database, raw: Any, small_batches: BufferedWriter
) -> None:
    writer = small_batches
    _batches_behind_a_lock(db, writer, raw, _rows(900, offset=100))  # nine batches wait
    assert writer.flush()
    writer.close()
    assert (_count(raw), writer.rows_written) == (1000, 1000)
    if writer._open.encoded:
        # The COPY under way (the first batch, waiting for the lock) carries them on.
        assert _transactions(raw) == [(10, 1000)]
    else:
        assert _transactions(raw) == [(1, 100), (9, 900)]


def test_a_flush_during_a_copy_sends_what_is_queued_in_that_copy(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    # A second COPY would wait for the first one's commit while the server waits for rows.
    _table(db)
    writer = BufferedWriter(db, "gauge", COLUMNS, batch_size=100, spool_dir=tmp_path / "spool")
    assert writer._open.encoded, "double precision rows are encoded on add()"
    flushing = threading.Thread(target=writer.flush)

    def flush_while_the_copy_waits() -> None:
        flushing.start()
        _wait_for(lambda: writer._flush_requested)

    # Eight batches and an open one of 50 rows wait behind the first one.
    _batches_behind_a_lock(db, writer, raw, _rows(850, offset=100), flush_while_the_copy_waits)
    flushing.join(60)
    assert not flushing.is_alive()
    writer.close()
    assert (_count(raw), writer.rows_written) == (950, 950)
    assert _transactions(raw) == [(10, 950)]


def _copy_waits_for_lock(raw: Any) -> bool:
    return bool(
        _number(
            raw,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
    )


def test_a_refused_row_among_batches_sent_together_is_rejected_alone(
    db: Database, raw: Any, small_batches: BufferedWriter
) -> None:
    writer = small_batches
    bad = [START - dt.timedelta(days=1), -1.0]  # a valid double the CHECK refuses
    _batches_behind_a_lock(db, writer, raw, [*_rows(450, offset=100), bad,
                                             *_rows(450, offset=550)])  # fmt: skip
    assert writer.flush()
    writer.close()
    assert (_count(raw), writer.rows_written, writer.rows_rejected) == (1000, 1000, 1)
    assert sum(rows for _, rows in _transactions(raw)) == 1000
    (kept,) = _rejected(writer.spool.folder)
    assert kept["row"][1] == -1.0


def _stream_in(writer: BufferedWriter, raw: Any, rows: list[list[Any]]) -> None:
    """Add ``rows`` one by one, the first batch's COPY under way before the rest."""
    for row in rows[:1500]:
        writer.add(row)
    _wait_for(lambda: _copy_progress(raw) >= 1000)
    for row in rows[1500:]:
        writer.add(row)


def test_a_copy_under_way_carries_the_batches_that_follow_in_one_transaction(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    _table(db)
    writer = _filling_writer(db, tmp_path / "spool", batch_size=2048)
    _stream_in(writer, raw, _rows(3 * 2048))
    assert _count(raw) == 0  # one transaction, open until the flush
    assert writer.flush()
    writer.close()
    assert (_count(raw), writer.rows_written) == (6144, 6144)
    assert _transactions(raw) == [(3, 6144)]  # each batch's id and count recorded


def test_a_copy_carrying_batches_ends_at_max_queued_batches_worth_of_rows(
    db: Database, raw: Any, tmp_path: Path
) -> None:
    _table(db)
    writer = _filling_writer(db, tmp_path / "spool", batch_size=2048, max_queued_batches=2)
    _stream_in(writer, raw, _rows(5 * 2048))
    _wait_for(lambda: _count(raw) >= 4096)  # committed without a flush
    assert writer.flush()
    writer.close()
    transactions = _transactions(raw)
    assert transactions[0] == (2, 4096)
    assert sum(rows for _, rows in transactions) == _count(raw) == 5 * 2048
