"""A buffered writer for acquisition loops: ``add(row)`` returns at once, nothing is lost.

Rows are written in batches (binary COPY) by a background thread, by size and by time.
When the server is unreachable, batches go to an on-disk spool; the writer reconnects with
exponential backoff and replays the spool in order. Each batch carries an id recorded in
the table ``lab_utils_batches`` in the same transaction as its rows, so a batch whose commit
outcome was lost is never written twice.

What a crash can lose: the rows added since the last flush that are still in memory (at
most ``batch_size`` rows or ``flush_interval`` seconds of data, plus what accumulated while
a write was in flight). Spooled batches are on disk (fsynced) and are replayed by the next
writer using the same spool folder.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psycopg2

from lab_utils.database.database import Database
from lab_utils.database.spool import Spool

log = logging.getLogger(__name__)

BATCH_TABLE = "lab_utils_batches"
"""Bookkeeping table: one row per batch written by a BufferedWriter."""

_CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


class BufferedWriter:
    """Write rows of ``columns`` into ``table_name`` in the background.

    Parameters
    ----------
    database : Database
        Where to write; the writer opens its own connection with the same settings.
    table_name : str
        The table (it must exist).
    columns : sequence of str
        The columns every row gives values for, in order (usually ``time`` first).
    batch_size : int, optional
        Rows per batch.
    flush_interval : float, optional
        Seconds after which a partial batch is written anyway.
    spool_dir : str or Path, optional
        Folder of the on-disk spool (default: ``~/.cache/lab_utils/spool/<table>``).
    max_spool_bytes : int, optional
        Size limit of the spool.
    """

    def __init__(
        self,
        database: Database,
        table_name: str,
        columns: Sequence[str],
        *,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        spool_dir: str | Path | None = None,
        max_spool_bytes: int = 256 * 1024 * 1024,
        max_backoff: float = 30.0,
    ) -> None:
        self.table_name = table_name
        self.columns = list(columns)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_backoff = max_backoff
        self._settings = {
            "host": database.host, "port": database.port, "database": database.database,
            "user": database.user, "passfile": database.passfile,
        }  # fmt: skip
        self._connect_timeout = database.connect_timeout
        folder = spool_dir or Path("~/.cache/lab_utils/spool").expanduser() / table_name
        self.spool = Spool(folder, max_spool_bytes)
        self._rows: deque[Sequence[Any]] = deque()
        self._changed = threading.Condition()
        self._closing = False
        self._flush_requested = False
        self._idle = threading.Event()
        self._db: Database | None = None
        self.rows_written = 0
        """Rows committed to the database."""
        self.rows_spooled = 0
        """Rows that went to the spool (and were replayed later, or are still there)."""
        self.rows_lost = 0
        """Rows refused because the spool was full."""
        self.reconnects = 0
        """Successful reconnections after an outage."""
        self._thread = threading.Thread(
            target=self._run, name=f"lab-db writer {table_name}", daemon=True
        )
        self._thread.start()

    # -- producer side -------------------------------------------------------------------

    def add(self, row: Sequence[Any]) -> None:
        """Queue one row (values in the order of ``columns``); returns at once."""
        if len(row) != len(self.columns):
            raise ValueError(f"row has {len(row)} values for {len(self.columns)} columns")
        with self._changed:
            if self._closing:
                raise RuntimeError("the writer is closed")
            self._rows.append(row)
            if len(self._rows) >= self.batch_size:
                self._changed.notify()

    def add_many(self, rows: Iterable[Sequence[Any]]) -> None:
        """Queue many rows."""
        for row in rows:
            self.add(row)

    def flush(self, timeout: float = 60.0) -> bool:
        """Write everything queued now; True when the queue and the spool are empty."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._flush_requested = True
            self._idle.clear()
            self._changed.notify()
        while time.monotonic() < deadline:
            if self._idle.wait(0.05):
                with self._changed:
                    if not self._rows and not self._flush_requested:
                        return not self.spool.batches()
                    self._idle.clear()
        return False

    def close(self, timeout: float = 60.0) -> None:
        """Flush (waiting at most ``timeout`` seconds), stop the thread, close the connection.

        Rows that could not be written are in the spool, replayed by the next writer.
        """
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._thread.join(timeout)
        if self._db is not None:
            self._db.close()
            self._db = None
        left = len(self.spool.batches())
        if left:
            log.warning(
                "Writer closed with %d batch(es) still in the spool %s", left, self.spool.folder
            )

    def __enter__(self) -> BufferedWriter:
        """Return the writer."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the writer (flushing it)."""
        self.close()

    # -- the background thread -----------------------------------------------------------

    def _take(self) -> list[Sequence[Any]] | None:
        """Wait for a batch (by size, time, flush or close); None when closing and empty."""
        deadline = time.monotonic() + self.flush_interval
        with self._changed:
            while True:
                ready = len(self._rows) >= self.batch_size or self._flush_requested or self._closing
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0:
                    break
                self._changed.wait(remaining)
            count = min(len(self._rows), self.batch_size)
            batch = [self._rows.popleft() for _ in range(count)]
            if not batch:
                self._flush_requested = False
                self._idle.set()
                if self._closing:
                    return None
            return batch

    def _run(self) -> None:
        backoff = 0.5
        while True:
            batch = self._take()
            if batch is None and not self.spool.batches():
                return
            if batch:
                batch_id = uuid.uuid4()
                try:
                    self._replay()
                    self._write(batch_id, batch)
                    backoff = 0.5
                except _CONNECTION_ERRORS as error:
                    self._outage(error)
                    self._to_spool(batch_id, batch)
                    backoff = self._sleep(backoff)
            elif self.spool.batches():
                try:
                    self._replay()
                    backoff = 0.5
                except _CONNECTION_ERRORS as error:
                    self._outage(error)
                    if self._closing:
                        return
                    backoff = self._sleep(backoff)

    def _sleep(self, backoff: float) -> float:
        with self._changed:
            if not self._closing:
                self._changed.wait(backoff)
        return min(backoff * 2, self.max_backoff)

    def _outage(self, error: Exception) -> None:
        if self._db is not None:
            log.warning(
                "Database unreachable (%s); spooling rows to %s",
                str(error).strip(),
                self.spool.folder,
            )
            with contextlib.suppress(psycopg2.Error):
                self._db.close()
            self._db = None

    def _to_spool(self, batch_id: uuid.UUID, batch: list[Sequence[Any]]) -> None:
        if self.spool.put(batch_id, batch):
            self.rows_spooled += len(batch)
        else:
            self.rows_lost += len(batch)
            log.error("Spool %s is full: %d rows lost", self.spool.folder, len(batch))

    def _database(self) -> Database:
        if self._db is None:
            db = Database(**self._settings, connect_timeout=self._connect_timeout)  # type: ignore[arg-type]
            db.connect()
            with db._transaction("writer bookkeeping") as cursor:
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {BATCH_TABLE} (batch_id uuid PRIMARY KEY,"
                    " table_name text NOT NULL, row_count integer NOT NULL,"
                    " written_at timestamptz NOT NULL DEFAULT now())"
                )
            if self.rows_spooled:
                self.reconnects += 1
                log.info("Database reachable again: replaying the spool")
            self._db = db
        return self._db

    def _write(self, batch_id: uuid.UUID, rows: Sequence[Sequence[Any]]) -> None:
        db = self._database()
        written = db.insert_many(
            self.table_name, self.columns, rows,
            batch=(BATCH_TABLE, str(batch_id)),
        )  # fmt: skip
        self.rows_written += written

    def _replay(self) -> None:
        for path in self.spool.batches():
            batch_id, rows = Spool.read(path)
            self._write(batch_id, rows)
            path.unlink()
