"""A buffered writer for acquisition loops: ``add(row)`` returns at once, no row is lost silently.

Rows are written in batches (binary COPY) by a background thread, by size and by time.
With ``lab-db[fast]`` a batch's COPY starts with its first 1024 rows and the thread sends
the rest as they come; while the producers keep it busy, one COPY goes on with the batches
that follow (each batch's id recorded in its transaction, committed at least every
``flush_interval`` seconds and every ``max_queued_batches`` batches; a flush or close ends
it once it has taken what is queued then).

- **Bad values.** Once the writer knows the column types (at start when the server is
  reachable, else from its first connection), ``add()`` raises ``ValueError``/``TypeError``
  for a value its column cannot hold. A batch the server refuses for its content (a CHECK
  violation, a value it cannot take) is split until the refused rows are isolated: every
  other row is written, the refused ones go to ``<spool>/rejected/`` with the server's
  reason, are counted in ``rows_rejected``, and one ERROR record says where they are.
- **Outages.** While the server is unreachable (from the start or in the middle), batches
  go to an on-disk spool; the writer reconnects with exponential backoff and replays the
  spool in order. One WARNING when the outage starts (with libpq's reason), a reminder at
  most every ``reminder_interval`` seconds, one WARNING when the database is back saying
  how long it was away and how many rows were replayed.
- **Exactly once.** Each batch carries an id recorded in ``lab_utils_batches`` in the same
  transaction as its rows, so a batch whose commit outcome was lost is never written twice.
  Ids are pruned once older than ``keep_batch_ids`` *and* older than the oldest batch still
  in the spool: a batch replayed after that long could be written twice.
- **Unexpected errors** in the thread are logged with their traceback; the batch goes to
  the spool and the writer carries on. Should the thread die anyway (``SystemExit``, a
  ``KeyboardInterrupt`` raised in it), the rows it held - the interrupted COPY's batches
  and those queued - go to the spool each with its own id (rows whose values cannot be
  spooled to ``rejected/``), one ERROR record says how many and where, and ``add()``,
  ``flush()`` and ``close()`` raise ``RuntimeError``.

What a crash can lose: the rows added since the last flush that are not yet committed (at
most ``flush_interval`` seconds of data or ``max_queued_batches`` batches, plus what
accumulated while a write was in flight). Spooled batches are on disk (fsynced) and are
replayed by the next writer using the same spool folder.

This module is the facade (the producers' side: ``add``, ``add_many``, ``flush``,
``close``, ``stats``); the rest of the writer lives beside it, a base class each:
:mod:`~lab_utils.database.writer_queue` (the batch queue), :mod:`~lab_utils.database.writer_copy`
(the streamed COPY), :mod:`~lab_utils.database.writer_refusals` (the refusal split and the
spool), :mod:`~lab_utils.database.writer_thread` (the thread: outages, replay, its death).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

from lab_utils.database.batches import BATCH_TABLE
from lab_utils.database.database import Database
from lab_utils.database.spool import Spool
from lab_utils.database.writer_errors import CONNECTION_ERRORS
from lab_utils.database.writer_queue import CHUNK, Batch
from lab_utils.database.writer_thread import WriterThread

log = logging.getLogger(__name__)

# Runs an iterator to its end in C, keeping nothing: add_many's loop over the rows.
_drain: Callable[[Iterable[object]], None] = deque[object](maxlen=0).extend

__all__ = ["BATCH_TABLE", "BufferedWriter", "WriterStats"]


@dataclass(frozen=True)
class WriterStats:
    """A snapshot of a :class:`BufferedWriter`, for a daemon's ``status`` command."""

    rows_written: int
    """Rows committed to the database."""
    rows_spooled: int
    """Rows that went to the spool (replayed later, or still there)."""
    rows_replayed: int
    """Spooled rows written since."""
    rows_rejected: int
    """Rows the server refused, kept in ``<spool>/rejected/``."""
    rows_lost: int
    """Rows that could be kept nowhere (the spool full), each reported at ERROR."""
    rows_queued: int
    """Rows in memory waiting for the next batch."""
    backlog_batches: int
    """Batches in the spool waiting to be replayed."""
    backlog_bytes: int
    """Size of the spool."""
    connected: bool
    """The writer has an open connection."""
    spooling: bool
    """An outage is under way: new batches go to the spool."""
    outage_seconds: float
    """How long the current outage has lasted (0 without one)."""
    reconnects: int
    """Outages the writer came back from."""
    alive: bool
    """The background thread is running."""
    last_error: str | None
    """The last problem met (outage reason, refused rows, unexpected error)."""


class BufferedWriter(WriterThread):
    """Write rows of ``columns`` into ``table_name`` in the background.

    Parameters
    ----------
    database : Database
        Where to write; the writer opens its own connection with the same settings
        (:meth:`Database.clone`). When ``database`` is connected, the column types are read
        at once, so that ``add()`` can refuse bad values.
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
    max_backoff : float, optional
        Longest wait between reconnection attempts, in seconds.
    reminder_interval : float, optional
        Seconds between WARNING reminders while an outage lasts.
    max_queued_batches : int, optional
        Full batches kept in memory at most: beyond that, add() waits for the thread
        (which writes them, or spools them to disk during an outage), so memory stays
        bounded when rows come faster than the server takes them.
    keep_batch_ids : datetime.timedelta, optional
        How long batch ids are kept in ``lab_utils_batches`` (at least as long as the
        oldest batch in the spool).

    Raises
    ------
    psycopg2.IntegrityError
        ``database`` is connected and the table or a column does not exist.
    ValueError
        A column of a type the writer cannot write.
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
        reminder_interval: float = 300.0,
        keep_batch_ids: dt.timedelta = dt.timedelta(days=7),
        max_queued_batches: int = 20,
    ) -> None:
        self.table_name = table_name
        self.columns = list(columns)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_backoff = max_backoff
        self.reminder_interval = reminder_interval
        self.keep_batch_ids = keep_batch_ids
        self.max_queued_batches = max_queued_batches
        self._template = database.clone(connect=False)
        self._where = f"{database.database!r} on {database.host}:{database.port}"
        folder = spool_dir or Path("~/.cache/lab_utils/spool").expanduser() / table_name
        self.spool = Spool(folder, max_spool_bytes)
        # Producers fill the open batch under this lock; a full batch is sealed (with its
        # binary COPY form when add() encodes) and handed to the thread.
        self._lock = threading.Lock()  # taken directly by add(): cheaper than the condition
        self._acquire, self._release = self._lock.acquire, self._lock.release
        self._changed = threading.Condition(self._lock)
        self._open = Batch(encoded=False)
        self._rows = self._open.rows  # add()'s shortcuts: the open batch's rows, and the
        self._stop_at = min(batch_size, CHUNK)  # count at which it hands them over
        self._stopped = False  # closing, or the thread has died: add() says why
        self._data = None  # the open batch's rows not yet in a chunk
        self._sealed = deque()  # complete batches, oldest first
        self._live = None  # the batch the thread is sending
        self._collections = 0  # times the thread took work: producers wait for the next
        self._missed = 0  # hand-overs in a row the thread did not come for
        self._asleep = False  # the thread sleeps until a row comes (add() wakes it)
        self._encoder = None
        self._format_row = None
        self._transformer = None
        # add() checks a row in full only when its value types differ from these.
        self._signature = ()
        if database.connection is not None and not database.connection.closed:
            # Unreachable now: the thread learns the types when it connects.
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._use_types(database.column_types(table_name, self.columns))
        self._closing = False
        self._flush_requested = False
        self._idle = threading.Event()
        self._db = None
        self._death = None
        self._down_since = None
        self._last_report = 0.0
        self._replayed_in_outage = 0
        self._pruned_at = None
        self._copy_sql = None  # "; COPY table (columns) ...", made once
        self._id_base = uuid.uuid4()
        self._id_count = itertools.count()
        self._spool_waiting = True  # a previous writer may have left batches
        # The rows of the batch in hand not yet committed, by batch id (a batch split to
        # isolate a refused row: the parts still to go, each with its derived id), and the
        # refused rows not yet kept in rejected/. Whatever stops the thread, these are what
        # it must keep: committed parts are out of it, so a replay never doubles them.
        self._unsent = {}
        self._refused_now = []
        self._tracking = True  # _write updates _unsent (not while replaying the spool)
        self._spool_looked = 0.0
        self.last_error = None
        """The last problem met, as one line (None until one happens)."""
        self.rows_written = 0
        """Rows committed to the database."""
        self.rows_spooled = 0
        """Rows that went to the spool (and were replayed later, or are still there)."""
        self.rows_replayed = 0
        """Spooled rows written since."""
        self.rows_rejected = 0
        """Rows the server refused for their content, kept in ``<spool>/rejected/``."""
        self.rows_lost = 0
        """Rows refused because the spool was full."""
        self.reconnects = 0
        """Successful reconnections after an outage."""
        self._thread = threading.Thread(
            target=self._run, name=f"lab-db writer {table_name}", daemon=True
        )
        self._thread.start()

    def _check_alive(self) -> None:
        if (self._death is not None or not self._thread.is_alive()) and not self._closing:
            raise RuntimeError(
                f"the writer of {self.table_name!r} has stopped ({self._death!r}); the rows"
                f" it held are in the spool {self.spool.folder} (or in its rejected/)"
            )

    def _refuse(self) -> None:
        if self._closing:
            raise RuntimeError("the writer is closed")
        self._check_alive()

    def _encode_slowly(self, row: Sequence[Any], data: bytearray) -> None:
        """Check and encode a row psycopg refused: lab-db's encoder says yes or why not."""
        self._check_row(row)
        assert self._encoder is not None
        data += self._encoder.encode_row(row)

    def add(self, row: Sequence[Any]) -> None:
        """Queue one row (values in the order of ``columns``); returns at once.

        Once the column types are known, a bad value raises here. With ``lab-db[fast]``
        the row is checked by encoding it (psycopg 3's C formatter), so the writer's
        thread only sends; otherwise a row of the plain value types (``float`` for float
        columns, ``datetime`` for times, ``str`` for text, ``bool`` for booleans) is
        accepted on a comparison of its types and any other row is checked value by value.

        Raises
        ------
        ValueError, TypeError
            The row has the wrong length, or (once the column types are known) a value its
            column cannot hold.
        RuntimeError
            The writer is closed, or its thread has stopped.
        """
        if self._stopped:
            self._refuse()
        # The lock's bound methods, not a with statement: a third of the cost (0.08 us
        # instead of 0.24 on CPython 3.10-3.13), the largest part of add() after encoding.
        self._acquire()
        try:
            data = self._data
            if data is not None:
                try:
                    self._format_row(row, self._transformer, data)  # type: ignore[misc]
                except BaseException as error:
                    # psycopg's formatter takes back what it wrote of a row it refuses
                    # (a test checks that no part of one reaches the server).
                    if not isinstance(error, Exception):
                        raise
                    self._encode_slowly(row, data)
            elif tuple(map(type, row)) != self._signature:
                self._check_row(row)
            rows = self._rows
            rows.append(row)
            if len(rows) < self._stop_at:  # the next chunk or the end of the batch
                return
            self._chunk_done()  # lets the thread take the chunk now
        finally:
            self._release()

    def add_many(self, rows: Iterable[Sequence[Any]]) -> None:
        """Queue many rows (see :meth:`add`); a bad row raises, the rows before it are queued.

        Rows are handed to the thread a chunk at a time as they are checked, so the
        first ones are being written while the next ones are encoded.
        """
        rows = rows if isinstance(rows, (list, tuple)) else list(rows)
        if self._closing or self._death is not None:
            self._refuse()
        size = self.batch_size
        with self._changed:
            plain = self._data is None
            if plain and not set(map(tuple, map(map, itertools.repeat(type), rows))) - {
                self._signature
            }:  # the value types of all rows, in C loops: all plain
                for start in range(0, len(rows), size):
                    self._rows.extend(rows[start : start + size])
                    self._chunk_done()
                return
        if plain:
            self._add_each(rows)
            return
        start = 0
        while start < len(rows):
            with self._changed:
                room = size - len(self._rows)
                if self._data is None:  # the types changed meanwhile (not seen in practice)
                    break
            part = list(rows[start : start + max(1, min(CHUNK, room))])
            try:
                data = self._encode_part(part)  # outside the lock: add() goes on meanwhile
            except (ValueError, TypeError):
                self._add_each(part)  # queues the rows before the bad one, raises at it
                raise  # (not reached: add() refuses what the encoder refused)
            with self._changed:
                self._hand_over()  # rows add() encoded before these
                self._rows += part
                self._open.chunks.append(data)
                self._chunk_done()
            start += len(part)
        self._add_each(rows[start:])

    def _add_each(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self.add(row)

    def _encode_part(self, rows: list[Sequence[Any]]) -> bytearray:
        """Encode rows with psycopg's formatter; rows it refuses go through lab-db's.

        The formatter is driven by a C loop (``map`` drained by a zero-length deque), so no
        bytecode runs per row; the bytearray, made for these rows alone and never written
        again, is handed over as it is (no copy).
        """
        data = bytearray()
        encoder = self._encoder
        assert encoder is not None and encoder.formatter is not None
        formatter = encoder.formatter
        try:
            _drain(map(formatter.function, rows, repeat(formatter.transformer), repeat(data)))
        except Exception:
            del data[:]
            for row in rows:
                self._encode_slowly(row, data)
        return data

    def flush(self, timeout: float = 60.0) -> bool:
        """Write everything queued now; True when the queue and the spool are empty.

        Raises
        ------
        RuntimeError
            The writer's thread has stopped.
        """
        self._check_alive()
        deadline = time.monotonic() + timeout
        with self._changed:
            self._flush_requested = True
            self._idle.clear()
            # All waiters: a producer waiting for room must not take the thread's wake-up.
            self._changed.notify_all()
        while time.monotonic() < deadline:
            if self._idle.wait(0.05):
                with self._changed:
                    if not (self._open.rows or self._sealed or self._flush_requested):
                        if not self.spool.batches():
                            return True
                        # Rows are out of memory but the spool still waits: ask again.
                        self._flush_requested = True
                        self._changed.notify_all()
                    self._idle.clear()
            self._check_alive()
        return False

    def close(self, timeout: float = 60.0) -> None:
        """Flush (waiting at most ``timeout`` seconds), stop the thread, close the connection.

        Rows that could not be written are in the spool, replayed by the next writer.

        Raises
        ------
        RuntimeError
            The thread had stopped: the rows it held, and those queued since, are in
            the spool (rows that cannot be spooled in its ``rejected/``).
        """
        dead = not self._thread.is_alive()
        with self._changed:
            self._closing = self._stopped = True
            self._changed.notify_all()
        self._thread.join(timeout)
        if self._db is not None:
            self._db.close()
            self._db = None
        if dead or self._death is not None:
            queued = self._drain()
            if queued:
                self._to_spool(uuid.uuid4(), queued)
            raise RuntimeError(
                f"the writer of {self.table_name!r} had stopped ({self._death!r}); the rows"
                f" it held are in the spool {self.spool.folder} (or its rejected/), with"
                f" {len(queued)} rows queued since"
            )
        if not self._thread.is_alive():
            late = self._drain()  # added by another thread while close() ran
            if late:
                self._to_spool(uuid.uuid4(), late)
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

    def stats(self) -> WriterStats:
        """Return the counters and the state, for a daemon's ``status`` command."""
        files = self.spool.batches()
        down = self._down_since
        return WriterStats(
            rows_written=self.rows_written,
            rows_spooled=self.rows_spooled,
            rows_replayed=self.rows_replayed,
            rows_rejected=self.rows_rejected,
            rows_lost=self.rows_lost,
            rows_queued=self._queued(),
            backlog_batches=len(files),
            backlog_bytes=sum(f.stat().st_size for f in files if f.exists()),
            connected=self._db is not None,
            spooling=down is not None,
            outage_seconds=0.0 if down is None else time.monotonic() - down,
            reconnects=self.reconnects,
            alive=self._thread.is_alive(),
            last_error=self.last_error,
        )
