"""A refused batch being split when its connection is lost or its thread dies: each row once.

The table refuses one row (a CHECK) and holds another (a trigger waiting for an advisory
lock the test keeps), so the writer is stopped exactly in the middle of splitting the batch:
after the refused row was isolated, while the half with the held row is sent. A second
connection then ends the writer's (``pg_terminate_backend``), or the writer's thread is
interrupted. Every row must end once in the table, the spool (to be replayed) or
``rejected/``.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from lab_utils.database import BufferedWriter, Constraint, Database, DataType
from lab_utils.database.spool import Spool

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
COLUMNS = ["time", "v"]
HELD = 7777.0
"""The value the table's trigger holds until the test lets go of its advisory lock."""
LOCK = 4242
BAD = [START - dt.timedelta(days=1), -1.0]
"""A valid double the CHECK refuses."""


def _batch() -> list[list[Any]]:
    """400 good rows, the refused one at 50 and the held one at 300: split between them."""
    rows: list[list[Any]] = [[START + dt.timedelta(seconds=n), float(n)] for n in range(400)]
    rows[300][1] = HELD
    return [*rows[:50], BAD, *rows[50:]]


def _rows(count: int, offset: int) -> list[list[Any]]:
    return [[START + dt.timedelta(seconds=offset + n), float(n)] for n in range(count)]


@pytest.fixture
def held(db: Database, raw: Any) -> Iterator[Any]:
    """Table ``gauge`` (``v >= 0``) whose trigger waits at ``HELD`` while the lock is held.

    Yields the connection holding the lock.
    """
    db.create_timescale_db("gauge")
    db.new_column("gauge", "v", DataType.double, [Constraint.positive])
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION hold_marked() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.v = {HELD} THEN PERFORM pg_advisory_xact_lock_shared({LOCK}); END IF;"
            " RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER hold BEFORE INSERT ON gauge FOR EACH ROW EXECUTE FUNCTION hold_marked()"
        )
    holder = psycopg2.connect(**db.connection_parameters())
    holder.autocommit = True
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
    yield holder
    holder.close()


def _let_go(holder: Any) -> None:
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _held_writer(raw: Any) -> int:
    """Wait until a writer's COPY waits at the held row; return its backend's pid."""
    found: list[int] = []

    def waiting() -> bool:
        with raw.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND wait_event = 'advisory' AND datname = current_database()"
            )
            found[:] = [pid for (pid,) in cursor.fetchall()]
        return bool(found)

    _wait_for(waiting)
    return found[0]


def _terminate(raw: Any, pid: int) -> None:
    with raw.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert cursor.fetchone() == (True,)


def _terminate_and_recover(writer: BufferedWriter, raw: Any, holder: Any) -> None:
    """End the writer's connection at the held row, let go of it, flush and close."""
    _terminate(raw, _held_writer(raw))  # the refused row isolated, the held half under way
    _let_go(holder)
    assert writer.flush(timeout=60)
    writer.close()


def _each_row_once(raw: Any, spool: Path, good: int) -> None:
    """Assert ``good`` rows in the table once each, the refused one in rejected/ once."""
    with raw.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT time) FROM gauge")
        assert cursor.fetchone() == (good, good)
    files = sorted((spool / "rejected").glob("*.jsonl"))
    kept = [json.loads(line)["row"] for path in files for line in path.read_text().splitlines()]
    assert [row[1] for row in kept] == [-1.0]
    assert not list(spool.glob("*.jsonl"))  # nothing left to replay


def test_a_connection_lost_while_a_refused_batch_is_split_keeps_each_row_once(
    db: Database, raw: Any, held: Any, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    rows = _batch()
    writer = BufferedWriter(
        db, "gauge", COLUMNS, batch_size=len(rows), flush_interval=600, max_backoff=0.2,
        spool_dir=spool,
    )  # fmt: skip
    writer.add_many(rows)
    _terminate_and_recover(writer, raw, held)
    _each_row_once(raw, spool, 400)
    assert (writer.rows_rejected, writer.rows_lost) == (1, 0)
    assert writer.rows_spooled == writer.rows_replayed > 0


def test_a_connection_lost_while_a_replayed_batch_is_split_rejects_its_refused_row_once(
    db: Database, raw: Any, held: Any, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    Spool(spool).put(uuid.uuid4(), _batch())  # left by a writer that closed in an outage
    writer = BufferedWriter(
        db, "gauge", COLUMNS, batch_size=100, flush_interval=600, max_backoff=0.2,
        spool_dir=spool,
    )  # fmt: skip
    # A full batch: the thread takes it, then replays the spool before writing it.
    writer.add_many(_rows(100, offset=1000))
    _terminate_and_recover(writer, raw, held)
    _each_row_once(raw, spool, 500)
    assert (writer.rows_rejected, writer.rows_lost) == (1, 0)


def _writer_thread() -> threading.Thread:
    (thread,) = [t for t in threading.enumerate() if t.name == "lab-db writer gauge"]
    return thread


def _interrupt(thread: threading.Thread) -> None:
    """Raise KeyboardInterrupt in ``thread`` (as a signal handler's exception would)."""
    assert thread.ident is not None
    raised = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt)
    )
    assert raised == 1


def _replay_by_the_next_writer(db: Database, spool: Path) -> BufferedWriter:
    with BufferedWriter(db, "gauge", COLUMNS, spool_dir=spool) as after:
        assert after.flush(timeout=60)
    return after


def test_a_writer_thread_killed_while_a_replayed_batch_is_split_leaves_it_to_the_next_writer(
    db: Database, raw: Any, held: Any, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    Spool(spool).put(uuid.uuid4(), _batch())
    writer = BufferedWriter(db, "gauge", COLUMNS, flush_interval=0.05, spool_dir=spool)
    _held_writer(raw)  # the replay has isolated the refused row and sends the held half
    _interrupt(_writer_thread())  # raised when the thread is back from libpq
    _let_go(held)
    _wait_for(lambda: not writer.stats().alive)
    assert writer.last_error == "writer stopped: KeyboardInterrupt"
    with pytest.raises(RuntimeError, match="had stopped"):
        writer.close()
    after = _replay_by_the_next_writer(db, spool)
    _each_row_once(raw, spool, 400)  # no half written twice, the refused row kept once
    assert writer.rows_rejected + after.rows_rejected == 1


class _ExitOnRejection(logging.Handler):
    """An application's handler that stops the thread logging a rejection (SystemExit)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.fired = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.fired and "rejected" in record.getMessage():
            self.fired = True
            raise SystemExit(5)


def test_a_writer_thread_dying_once_a_replayed_batch_is_split_rejects_its_row_once(
    db: Database, raw: Any, held: Any, tmp_path: Path
) -> None:
    _let_go(held)
    spool = tmp_path / "spool"
    Spool(spool).put(uuid.uuid4(), _batch())
    exiting = _ExitOnRejection()
    logger = logging.getLogger("lab_utils.database.writer")
    logger.addHandler(exiting)
    try:
        # The thread dies after keeping the refused row, before removing the spool file.
        writer = BufferedWriter(db, "gauge", COLUMNS, flush_interval=0.05, spool_dir=spool)
        _wait_for(lambda: not writer.stats().alive)
    finally:
        logger.removeHandler(exiting)
    assert exiting.fired and writer.last_error == "writer stopped: SystemExit: 5"
    with pytest.raises(RuntimeError, match="had stopped"):
        writer.close()
    _replay_by_the_next_writer(db, spool)
    _each_row_once(raw, spool, 400)
