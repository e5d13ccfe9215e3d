"""One producer adds without the lock, the writer's thread takes its rows on time; many producers.

Every row is counted: each has its own value, so a row lost or written twice shows in the
count of distinct values against the count of rows.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab_utils.database import BufferedWriter, Constraint, Database, DataType

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
COLUMNS = ["time", "v"]


def _rows(count: int, first: int = 0) -> list[list[Any]]:
    """Rows whose values ``first + 1 ...`` are unique (and positive, as the table wants)."""
    return [
        [START + dt.timedelta(microseconds=n), float(n + 1)] for n in range(first, first + count)
    ]


@pytest.fixture(params=[DataType.double, DataType.float], ids=["encoded-on-add", "by-thread"])
def kind(request: pytest.FixtureRequest, db: Database) -> DataType:
    """The value column's type: encoded by add() (double), or checked and sent by the thread."""
    kind: DataType = request.param
    db.create_timescale_db("gauge")
    db.new_column("gauge", "v", kind, [Constraint.positive])
    return kind


def _totals(raw: Any) -> tuple[int, int]:
    """Rows in the table, and distinct values among them."""
    with raw.cursor() as cursor:
        cursor.execute('SELECT count(*), count(DISTINCT v) FROM "gauge"')
        total, distinct = cursor.fetchone()
        return int(total), int(distinct)


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _run(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive()


def test_one_producer_raced_by_flushes_and_a_tiny_interval_loses_and_doubles_nothing(
    kind: DataType, db: Database, raw: Any, tmp_path: Path
) -> None:
    count = 60_000
    writer = BufferedWriter(
        db, "gauge", COLUMNS, batch_size=3000, flush_interval=0.001, spool_dir=tmp_path / "spool"
    )
    done = threading.Event()
    flushed: list[bool] = []

    def flusher() -> None:  # completes the open batch while the producer is in add()
        while not done.is_set():
            # Each returns once the rows queued are written: the producer is done in a second.
            flushed.append(writer.flush(timeout=30))

    def producer() -> None:
        try:
            for row in _rows(count):
                writer.add(row)
        finally:
            done.set()

    _run([threading.Thread(target=flusher), threading.Thread(target=producer)])
    assert writer.flush(timeout=60)
    writer.close()
    assert len(flushed) > 1 and all(flushed)
    assert _totals(raw) == (count, count)
    assert (writer.rows_written, writer.rows_spooled, writer.rows_lost) == (count, 0, 0)


@pytest.mark.parametrize("producers", [2, 4])
def test_several_producers_lose_and_double_nothing(
    kind: DataType, db: Database, raw: Any, tmp_path: Path, producers: int
) -> None:
    each = 20_000
    writer = BufferedWriter(
        db, "gauge", COLUMNS, batch_size=2000, flush_interval=0.005, spool_dir=tmp_path / "spool"
    )
    first_rows_in = threading.Event()

    def producer(index: int) -> None:
        rows = _rows(each, first=index * each)
        if index:
            first_rows_in.wait(60)  # the first producer adds alone for a while, then shares
        for n, row in enumerate(rows):
            writer.add(row)
            if n == each // 4:
                first_rows_in.set()

    _run([threading.Thread(target=producer, args=(index,)) for index in range(producers)])
    writer.close()
    total = each * producers
    assert _totals(raw) == (total, total)
    assert writer.rows_written == total


def test_add_many_from_a_second_thread_while_the_first_adds_row_by_row(
    kind: DataType, db: Database, raw: Any, tmp_path: Path
) -> None:
    writer = BufferedWriter(
        db, "gauge", COLUMNS, batch_size=2000, flush_interval=0.005, spool_dir=tmp_path / "spool"
    )
    started = threading.Event()

    def one_by_one() -> None:
        for n, row in enumerate(_rows(30_000)):
            writer.add(row)
            if n == 1000:
                started.set()

    def in_blocks() -> None:
        started.wait(60)
        for block in range(10):
            writer.add_many(_rows(1500, first=30_000 + block * 1500))

    _run([threading.Thread(target=one_by_one), threading.Thread(target=in_blocks)])
    writer.close()
    assert _totals(raw) == (45_000, 45_000)


def test_a_slow_producer_s_rows_arrive_without_a_flush(
    kind: DataType, db: Database, raw: Any, tmp_path: Path
) -> None:
    writer = BufferedWriter(
        db, "gauge", COLUMNS, batch_size=5000, flush_interval=0.05, spool_dir=tmp_path / "spool"
    )
    for n, row in enumerate(_rows(5), start=1):
        writer.add(row)  # one row, then quiet: the thread takes the open batch itself
        _wait_for(lambda n=n: _totals(raw) == (n, n))  # type: ignore[misc]
    writer.close()
    assert writer.rows_written == 5
