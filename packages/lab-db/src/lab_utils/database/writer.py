"""A buffered writer for acquisition loops: ``add(row)`` returns at once, no row is lost silently.

Rows are written in batches (binary COPY) by a background thread, by size and by time.
With ``lab-db[fast]`` a batch's COPY starts with its first 1024 rows and the thread sends
the rest as they come; while the producers keep it busy, one COPY goes on with the batches
that follow (each batch's id recorded in its transaction, committed at least every
``flush_interval`` seconds and every ``max_queued_batches`` batches).

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
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from lab_utils.database import batches
from lab_utils.database.batches import BATCH_TABLE
from lab_utils.database.binary_copy import HEADER, TRAILER, CopyStream, RowEncoder
from lab_utils.database.column_types import column_type
from lab_utils.database.database import Database
from lab_utils.database.identifiers import ident
from lab_utils.database.spool import Spool

log = logging.getLogger(__name__)

__all__ = ["BATCH_TABLE", "BufferedWriter", "WriterStats"]

_CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


class _Never:
    """The type no value has: a column whose values add() always checks one by one."""


# Column type -> the value type accepted without a check (every value of it fits).
_SAFE_TYPES: dict[str, type] = {
    "double precision": float,
    "text": str,
    "character varying": str,
    "boolean": bool,
    "timestamp with time zone": dt.datetime,
    "timestamp without time zone": dt.datetime,
}


# Rows per chunk (a power of two): add() hands the encoded rows to the thread, and lets it
# have the interpreter, every this many rows; see BufferedWriter.add.
_CHUNK = 1024


class _Batch:
    """Rows on their way to one COPY, and their binary COPY form a chunk at a time.

    The producers fill the open batch; the thread may start its COPY while it is still
    open (it is then ``live``) and send each chunk as it is handed over, so that little
    is left to send when the batch completes (by size, time, flush or close).
    """

    __slots__ = ("chunks", "complete", "deadline", "encoded", "id", "live", "members", "rows")

    def __init__(self, encoded: bool) -> None:
        self.rows: list[Sequence[Any]] = []
        self.chunks: deque[bytes] = deque()  # encoded rows handed over, not yet sent
        self.encoded = encoded  # add() encodes its rows (lab-db[fast])
        self.complete = False  # no row will be added
        self.live = False  # the thread is sending it
        self.deadline = 0.0  # when the thread completes it if its producers have not
        self.members: list[_Batch] = []  # the batches sent together in this one COPY
        self.id: uuid.UUID | None = None  # recorded with the rows (given by the thread)

    @classmethod
    def group(cls, members: list[_Batch], live: bool = False) -> _Batch:
        """Return batches sent in one COPY and transaction, each keeping its own id.

        A ``live`` group goes on taking the batches that follow while it is sent.
        """
        if len(members) == 1 and not live:
            return members[0]
        batch = cls(members[0].encoded)
        batch.members = members
        batch.complete = not live
        return batch

    def parts(self) -> list[_Batch]:
        """Return the batches with rows of their own: the members, or this batch."""
        return self.members or [self]

    def count(self) -> int:
        """Return the rows of this batch, or of its members."""
        return sum(len(part.rows) for part in self.parts())


class _BatchStream:
    """The file-like object psycopg2's ``copy_expert`` reads a batch from, chunk by chunk.

    A read waits (the interpreter let go) for the next chunk while a batch is open, and
    completes it itself on a flush, a close, or at the deadline. A live group goes on with
    the batches that follow (:meth:`BufferedWriter._follow`): while the producers keep the
    thread busy, one COPY carries them all, as ``insert_many``'s does.
    """

    def __init__(self, writer: BufferedWriter, batch: _Batch) -> None:
        self._writer = writer
        self._group = batch
        self._parts = batch.parts()  # a live group's list: it grows as batches join
        self._index = 0
        self._started = False
        self._ended = False
        self.rows = 0
        """Rows in the data (known once it has all been read)."""
        self.error: Exception | None = None
        """Always None: the rows were encoded (and checked) beforehand."""

    def read(self, size: int = -1) -> bytes:
        """Return the chunks waiting, the trailer at the end, then ``b''``; ``size`` is a hint.

        Every chunk waiting goes in one piece: each read is a time the thread has to win
        the interpreter back from the producer, so one chunk per read could never catch up.
        """
        if self._ended:
            return b""
        writer, group = self._writer, self._group
        pieces = [] if self._started else [HEADER]
        self._started = True
        with writer._changed:
            while True:
                batch = self._parts[self._index]
                if batch.chunks:
                    pieces += batch.chunks
                    batch.chunks.clear()
                if batch.complete:
                    if self._index + 1 < len(self._parts) or (
                        not group.complete and writer._follow(group)
                    ):
                        self._index += 1
                        continue
                    self._ended = True
                    self.rows = group.count()
                    pieces.append(TRAILER)
                    break
                if pieces:
                    break
                remaining = group.deadline - time.monotonic()
                if remaining <= 0 or writer._flush_requested or writer._closing:
                    writer._complete(batch)
                    continue
                writer._changed.wait(remaining)
        return b"".join(pieces)

    def readline(self, size: int = -1) -> bytes:
        """Binary COPY has no lines; psycopg2 only calls :meth:`read`."""
        return self.read(size)

    def close(self) -> None:
        """Nothing to stop."""


class _UnavailableError(Exception):
    """The database cannot take rows now (unreachable, login refused, table missing)."""


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


def _reason(error: BaseException) -> str:
    """One line: libpq's or the server's message, or the exception's with its type."""
    text = " ".join(str(error).split())
    if isinstance(error, (psycopg2.Error, _UnavailableError)):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class BufferedWriter:
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
        self._open = _Batch(encoded=False)
        self._rows = self._open.rows  # add()'s shortcuts: the open batch's rows, and the
        self._stop_at = min(batch_size, _CHUNK)  # count at which it hands them over
        self._stopped = False  # closing, or the thread has died: add() says why
        self._data: bytearray | None = None  # the open batch's rows not yet in a chunk
        self._sealed: deque[_Batch] = deque()  # complete batches, oldest first
        self._live: _Batch | None = None  # the batch the thread is sending
        self._encoder: RowEncoder | None = None
        self._format_row: Callable[[Sequence[Any], Any, bytearray], None] | None = None
        self._transformer: Any = None
        # add() checks a row in full only when its value types differ from these.
        self._signature: tuple[type, ...] = ()
        if database.connection is not None and not database.connection.closed:
            # Unreachable now: the thread learns the types when it connects.
            with contextlib.suppress(*_CONNECTION_ERRORS):
                self._use_types(database.column_types(table_name, self.columns))
        self._closing = False
        self._flush_requested = False
        self._idle = threading.Event()
        self._db: Database | None = None
        self._death: BaseException | None = None
        self._down_since: float | None = None
        self._last_report = 0.0
        self._replayed_in_outage = 0
        self._pruned_at: float | None = None
        self._copy_sql: str | None = None  # "; COPY table (columns) ...", made once
        self._id_base = uuid.uuid4()
        self._id_count = itertools.count()
        self._spool_waiting = True  # a previous writer may have left batches
        # The rows of the batch in hand not yet committed, by batch id (a batch split to
        # isolate a refused row: the parts still to go, each with its derived id), and the
        # refused rows not yet kept in rejected/. Whatever stops the thread, these are what
        # it must keep: committed parts are out of it, so a replay never doubles them.
        self._unsent: dict[uuid.UUID, list[Sequence[Any]]] = {}
        self._refused_now: list[tuple[Sequence[Any], str]] = []
        self._tracking = True  # _write updates _unsent (not while replaying the spool)
        self._spool_looked = 0.0
        self.last_error: str | None = None
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

    # -- producer side -------------------------------------------------------------------

    def _check_alive(self) -> None:
        if (self._death is not None or not self._thread.is_alive()) and not self._closing:
            raise RuntimeError(
                f"the writer of {self.table_name!r} has stopped ({self._death!r}); the rows"
                f" it held are in the spool {self.spool.folder} (or in its rejected/)"
            )

    def _use_types(self, types: Sequence[str]) -> None:
        """Take the column types: the encoder, the fast check and the encoding on add()."""
        if self._encoder is not None and list(types) == self._encoder.types:
            return  # known already (a reconnection): the open batch goes on as it is
        encoder = RowEncoder(types)
        formatter = encoder.formatter
        with self._changed:
            self._seal()  # the rows so far were queued without their encoded form
            self._encoder = encoder
            self._signature = tuple(
                _SAFE_TYPES.get(column_type(name).name, _Never) for name in types
            )
            if formatter is None:
                self._format_row, self._transformer, self._data = None, None, None
            else:
                self._format_row, self._transformer = formatter.function, formatter.transformer
                self._data = bytearray()
            self._new_open(encoded=formatter is not None)

    def _check_row(self, row: Sequence[Any]) -> None:
        """Check a row whose value types are not the plain ones of its columns."""
        if len(row) != len(self.columns):
            raise ValueError(f"row has {len(row)} values for {len(self.columns)} columns")
        encoder = self._encoder
        if encoder is None:
            return
        try:
            encoder.check_row(row, self._signature)
        except (ValueError, TypeError, OverflowError) as error:
            kind = TypeError if isinstance(error, TypeError) else ValueError
            raise kind(f"{error} (row {list(row)!r} for {self.columns})") from None

    def _refuse(self) -> None:
        if self._closing:
            raise RuntimeError("the writer is closed")
        self._check_alive()

    def _new_open(self, encoded: bool) -> None:
        """Start a new open batch (the lock held)."""
        self._open = _Batch(encoded)
        self._rows = self._open.rows
        self._stop_at = min(self.batch_size, _CHUNK)

    def _hand_over(self) -> None:
        """Make the open batch's newest encoded rows a chunk the thread can send (lock held)."""
        data = self._data
        if data:
            self._open.chunks.append(bytes(data))
            self._data = bytearray()
        self._stop_at = min(self.batch_size, (len(self._rows) // _CHUNK + 1) * _CHUNK)
        self._changed.notify_all()

    def _chunk_done(self) -> None:
        """Hand over a chunk, or the whole batch when it is full (the lock held)."""
        if len(self._rows) >= self.batch_size:
            self._seal()
            if self._backlog() > self.max_queued_batches:
                self._wait_for_room()
        else:
            self._hand_over()

    def _seal(self) -> None:
        """Complete the open batch and hand it to the thread (with the lock held)."""
        batch = self._open
        if batch.rows:
            self._hand_over()
            batch.complete = True
            if not batch.live:  # else the thread has it already
                self._sealed.append(batch)
            self._new_open(encoded=batch.encoded)

    def _complete(self, batch: _Batch) -> None:
        """Complete ``batch`` if it is the open one (the lock held): no row joins it now."""
        if batch is self._open:
            self._seal()
            if batch is self._open:  # it had no row: the producers get a new one
                self._new_open(encoded=batch.encoded)
        batch.complete = True

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
                mark = len(data)
                try:
                    self._format_row(row, self._transformer, data)  # type: ignore[misc]
                except BaseException as error:
                    del data[mark:]
                    if not isinstance(error, Exception):
                        raise
                    self._encode_slowly(row, data)
            elif tuple(map(type, row)) != self._signature:
                self._check_row(row)
            rows = self._rows
            rows.append(row)
            if len(rows) < self._stop_at:  # the next chunk or the end of the batch
                return
            self._chunk_done()
        finally:
            self._release()
        # A chunk was handed over. The thread and this loop share the interpreter: the
        # thread, waiting for the chunk or back from libpq, would wait for the producer to
        # let go up to the switch interval (5 ms by default). A zero sleep (the interpreter
        # let go and taken again) lets it send the chunk now, for microseconds per chunk.
        time.sleep(0)

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
            part = list(rows[start : start + max(1, min(_CHUNK, room))])
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
            time.sleep(0)  # the thread sends the chunk now (see add)
        self._add_each(rows[start:])

    def _wait_for_room(self) -> None:
        """Wait (the lock held) while more than ``max_queued_batches`` batches wait."""
        while (
            self._backlog() > self.max_queued_batches
            and not self._closing
            and self._death is None
            and self._thread.is_alive()
        ):
            self._changed.wait(0.5)

    def _backlog(self) -> int:
        """Return the complete batches in memory but the one being written (lock held).

        Those waiting, and those the thread took together with it: memory holds what it
        held when the thread took one batch at a time.
        """
        taken = 0 if self._live is None else sum(part.complete for part in self._live.members)
        return len(self._sealed) + max(taken - 1, 0)

    def _add_each(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self.add(row)

    def _encode_part(self, rows: list[Sequence[Any]]) -> bytes:
        """Encode rows with psycopg's formatter; rows it refuses go through lab-db's."""
        data = bytearray()
        encoder = self._encoder
        assert encoder is not None and encoder.formatter is not None
        try:
            encoder.formatter.format_into(rows, data)
        except Exception:
            for row in rows:
                self._encode_slowly(row, data)
        return bytes(data)

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
            The thread had stopped: the rows still queued were put in the spool.
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
                f"the writer of {self.table_name!r} had stopped ({self._death!r});"
                f" {len(queued)} queued rows were put in the spool {self.spool.folder}"
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

    def _drain(self) -> list[Sequence[Any]]:
        """Take every row still in memory (the thread has stopped)."""
        with self._changed:
            self._open.live = False  # a stopped thread sends nothing: the rows are here
            self._seal()
            rows = [row for batch in self._sealed for row in batch.rows]
            self._sealed.clear()
        return rows

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

    def _queued(self) -> int:
        """Rows in memory waiting: the open batch, the complete ones but the one being written.

        The batches the thread took together with the one it writes count as waiting, as
        they did when it took one at a time.
        """
        with self._changed:
            taken = [] if self._live is None else self._live.members[1:]
            return (
                len(self._open.rows)
                + sum(len(batch.rows) for batch in self._sealed)
                + sum(len(batch.rows) for batch in taken if batch is not self._open)
            )

    # -- the background thread -----------------------------------------------------------

    def _take(self) -> _Batch | None:
        """Wait for a batch (by size, time, flush or close); None when closing and empty.

        A complete batch comes first; else the open batch once it has a chunk of encoded
        rows: its COPY starts then and goes on while the producers fill it (it is ``live``,
        completed at the latest ``flush_interval`` after this call began).
        """
        deadline = time.monotonic() + self.flush_interval
        with self._changed:
            if self._live is not None and self._live.members:
                self._changed.notify_all()  # its batches are out of memory: room
            self._live = None
            while True:
                ready = self._sealed or self._flush_requested or self._closing or self._open.chunks
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0:
                    break
                self._changed.wait(remaining)
            if self._sealed:
                self._changed.notify_all()  # producers waiting for room
                batch = self._take_sealed()
            elif self._open.chunks and not (self._flush_requested or self._closing):
                self._open.live = True
                batch = _Batch.group([self._open], live=True)
                batch.deadline = deadline
            else:
                self._seal()
                if not self._sealed:
                    self._flush_requested = False
                    self._idle.set()
                    return None if self._closing else _Batch(encoded=False)
                batch = self._take_sealed()
            self._live = batch
            return batch

    def _take_sealed(self) -> _Batch:
        """Take every complete batch waiting, as one (the lock held).

        A thread behind its producers then pays the fixed cost of a COPY (its round trips,
        each a wait for the interpreter) once for all of them: it catches up instead of
        falling further behind with small batches.
        """
        members = [self._sealed.popleft()]
        while self._sealed and self._sealed[0].encoded == members[0].encoded:
            members.append(self._sealed.popleft())
        return _Batch.group(members)

    def _follow(self, group: _Batch) -> bool:
        """Add the next batch to a live group being sent; False: end its COPY (lock held).

        The group ends on a flush or close, at its deadline (``flush_interval`` after it
        was taken: rows are committed at most that late), or at ``max_queued_batches``
        batches' worth of rows (what a crash can lose stays within what memory holds).
        """
        if (
            self._flush_requested
            or self._closing
            or time.monotonic() >= group.deadline
            or group.count() >= self.batch_size * self.max_queued_batches
        ):
            return False
        if self._sealed:
            if not self._sealed[0].encoded:
                return False
            batch = self._sealed.popleft()
            self._changed.notify_all()  # producers waiting for room
        elif self._open.encoded:
            batch = self._open  # even empty: the producer is about to fill it
            batch.live = True
        else:
            return False
        batch.id = self._new_id()
        group.members.append(batch)
        self._unsent[batch.id] = batch.rows
        return True

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as error:
            # Only a bug or SystemExit gets here: keep the rows, say so loudly; add(),
            # flush() and close() raise from now on.
            with self._changed:
                self._death, self._stopped = error, True
                self._changed.notify_all()  # producers waiting for room
            try:
                self._rescue(error)
            finally:
                self._idle.set()

    def _rescue(self, error: BaseException) -> None:
        """Keep every row the dying thread held: in the spool, or in ``rejected/``.

        The interrupted COPY is rolled back with its connection; its batches and those
        still queued go to the spool each with its own id, so the next writer's replay is
        exactly once against ``lab_utils_batches``. Rows that cannot be spooled (a value
        without a text) go to ``rejected/``. One ERROR record tells it all.
        """
        self._disconnect()
        with self._changed:
            if self._live is not None:
                for part in self._live.parts():
                    self._complete(part)  # the producers' open batch stops growing
                self._live.complete = True
            self._open.live = False
            self._seal()
            queued = list(self._sealed)
            self._sealed.clear()
            self._changed.notify_all()
        pending = [(batch_id, rows) for batch_id, rows in self._unsent.items() if rows]
        pending += [(self._new_id(), batch.rows) for batch in queued if batch.rows]
        refused, self._unsent, self._refused_now = self._refused_now, {}, []
        spooled = lost = 0
        for batch_id, rows in pending:
            good, bad = Spool.storable(rows)
            refused += bad
            if not good:
                continue
            try:
                stored = self.spool.put(batch_id, good)
            except Exception as failure:  # the spool folder itself fails
                refused += [(row, f"could not be spooled: {_reason(failure)}") for row in good]
                continue
            if stored:
                spooled += len(good)
                self.rows_spooled += len(good)
                self._spool_waiting = True
            else:
                lost += len(good)
                self.rows_lost += len(good)
        kept: Path | str = self.spool.folder / "rejected"
        rejected = 0
        if refused:
            try:
                kept = self.spool.reject(self.table_name, self.columns, refused)
                rejected = len(refused)
                self.rows_rejected += rejected
            except Exception as failure:  # the folder fails too: say so, count them lost
                lost += len(refused)
                self.rows_lost += len(refused)
                kept = f"nowhere ({_reason(failure)})"
        self.last_error = f"writer stopped: {_reason(error)}"
        log.error(
            "The writer of %r stopped (%s): %d rows it held were spooled to %s (replayed by"
            " the next writer on that folder), %d rejected to %s, %d lost (spool full);"
            " add(), flush() and close() raise from now on",
            self.table_name, _reason(error), spooled, self.spool.folder, rejected, kept, lost,
            exc_info=error,
        )  # fmt: skip

    def _loop(self) -> None:
        backoff = 0.5
        while True:
            taken = self._take()
            if taken is None and not self.spool.batches():
                return
            batch = taken or _Batch(encoded=False)
            for part in batch.parts():
                part.id = self._new_id()
            self._unsent = {self._id_of(part): part.rows for part in batch.parts()}
            try:
                self._replay(look=not batch.count())
                if batch.members:
                    self._write_group(batch)
                elif batch.rows:
                    self._write(self._id_of(batch), batch.rows, batch)
                self._unsent = {}
                self._maintain()
                backoff = 0.5
            except (_UnavailableError, *_CONNECTION_ERRORS) as error:
                self._complete_taken(batch)
                self._outage(error)
                if batch.count():
                    self._spool_unsent()
                    self._spool_sealed()
                elif self._closing:
                    return
                backoff = self._sleep(backoff)
            except Exception as error:
                self._complete_taken(batch)
                self.last_error = _reason(error)
                log.exception(
                    "Unexpected error in the writer of %r (the batch goes to the spool %s;"
                    " the writer carries on)", self.table_name, self.spool.folder,
                )  # fmt: skip
                self._disconnect()
                if batch.count():
                    self._spool_unsent()
                elif self._closing:
                    return
                backoff = self._sleep(backoff)

    @staticmethod
    def _id_of(batch: _Batch) -> uuid.UUID:
        assert batch.id is not None  # given when the thread took the batch
        return batch.id

    def _spool_unsent(self) -> None:
        """Spool what the batch in hand has not committed, each part with its own id.

        Parts already committed (of a batch split around a refused row) are left out, so
        a replay writes each row once; refused rows not yet kept go to ``rejected/``.
        """
        # Each part leaves _unsent once kept: should the thread die meanwhile, _rescue
        # keeps the rest.
        if self._refused_now:
            self._reject(self._refused_now)
            self._refused_now = []
        while self._unsent:
            batch_id, rows = next(iter(self._unsent.items()))
            if rows:
                self._to_spool(batch_id, rows)
            del self._unsent[batch_id]

    def _complete_taken(self, batch: _Batch) -> None:
        """Complete a batch whose write failed: its rows are final, to spool or split."""
        with self._changed:
            for part in batch.parts():
                self._complete(part)
            batch.complete = True

    def _spool_sealed(self) -> None:
        """During an outage, move every full batch from memory to the spool (in order)."""
        while True:
            with self._changed:
                if not self._sealed:
                    return
                rows = self._sealed.popleft().rows
                self._changed.notify_all()  # producers waiting for room
            self._to_spool(uuid.uuid4(), rows)

    def _sleep(self, backoff: float) -> float:
        with self._changed:
            if not self._closing:
                self._changed.wait(backoff)
        return min(backoff * 2, self.max_backoff)

    def _disconnect(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            try:
                db.close()
            except psycopg2.Error as error:
                log.debug("Closing the writer's broken connection: %s", _reason(error))

    def _outage(self, error: BaseException) -> None:
        """Tell the outage as one story: a WARNING at its start, then reminders."""
        self._disconnect()
        reason = _reason(error)
        self.last_error = reason
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = self._last_report = now
            self._replayed_in_outage = 0
            log.warning(
                "Database %s unavailable (%s); spooling rows of %r to %s",
                self._where, reason, self.table_name, self.spool.folder,
            )  # fmt: skip
        elif now - self._last_report >= self.reminder_interval:
            self._last_report = now
            log.warning(
                "Database %s still unavailable after %.0f s (%s); %d rows spooled so far",
                self._where, now - self._down_since, reason, self.rows_spooled,
            )  # fmt: skip

    def _back(self) -> None:
        """Close the outage's story once the spool is empty again."""
        if self._down_since is None:
            return
        away = time.monotonic() - self._down_since
        self._down_since = None
        self.reconnects += 1
        log.warning(
            "Database %s is back after %.1f s; %d spooled rows replayed into %r",
            self._where, away, self._replayed_in_outage, self.table_name,
        )  # fmt: skip

    def _to_spool(self, batch_id: uuid.UUID, batch: list[Sequence[Any]]) -> None:
        try:
            stored = self.spool.put(batch_id, batch)
        except Exception as error:  # the spool folder itself fails: keep the rows elsewhere
            log.exception("Spool %s cannot store a batch", self.spool.folder)
            reason = f"could not be spooled: {_reason(error)}"
            self._reject([(row, reason) for row in batch])
            return
        if stored:
            self._spool_waiting = True
            self.rows_spooled += len(batch)
        else:
            self.rows_lost += len(batch)
            log.error("Spool %s is full: %d rows lost", self.spool.folder, len(batch))

    def _database(self) -> Database:
        """Return the writer's own connection (bookkeeping table made, column types read)."""
        if self._db is not None:
            return self._db
        db = self._template.clone(connect=False)
        db.log_failures = False  # the writer reports failures itself, once
        try:
            db.connect()
            with db.transaction("writer bookkeeping") as cursor:
                batches.create(cursor)
            types = db.column_types(self.table_name, self.columns)
        except psycopg2.Error as error:
            db.close()
            raise _UnavailableError(_reason(error)) from error
        self._use_types(types)
        self._db = db
        return db

    def _maintain(self) -> None:
        """Prune old batch ids, about once an hour while connected."""
        if self._db is None or (
            self._pruned_at is not None and time.monotonic() - self._pruned_at < 3600
        ):
            return
        self._pruned_at = time.monotonic()
        keep = max(self.keep_batch_ids, dt.timedelta(seconds=self.spool.oldest_age() + 3600))
        try:
            with self._db.transaction("pruning batch ids") as cursor:
                pruned = batches.prune(cursor, keep)
        except _CONNECTION_ERRORS:
            raise
        except psycopg2.Error as error:  # pruning can wait: the rows matter, not the ids
            log.warning("Pruning %s failed: %s", BATCH_TABLE, _reason(error))
            return
        if pruned:
            log.info("Pruned %d batch ids older than %s from %s", pruned, keep, BATCH_TABLE)

    def _write(
        self, batch_id: uuid.UUID, rows: Sequence[Sequence[Any]], batch: _Batch | None = None
    ) -> int:
        """Write a batch; isolate and keep aside rows refused for their content.

        ``batch``, when given, holds ``rows`` and their encoded chunks (it may be live).
        """
        db = self._database()
        refused = self._refused_now = []
        written = self._write_part(db, batch_id, rows, refused, batch)
        self._refused_now = []
        if refused:
            self._reject(refused)
        return written

    def _write_group(self, group: _Batch) -> None:
        """Write batches in one COPY; refused, they are written one by one."""
        db = self._database()
        # Rows encoded on add() are read from the members' chunks (a live group's grow as
        # it is sent); the others are encoded by the thread from the members' rows.
        rows = [] if group.encoded else [row for part in group.members for row in part.rows]
        try:
            written = self._copy(db, [], rows, group)
        except _CONNECTION_ERRORS:
            raise
        except Exception as error:
            if db.connection is None or db.connection.closed:
                raise psycopg2.InterfaceError(f"connection lost: {_reason(error)}") from error
            log.debug("A group of %d batches was refused (%s): one by one",
                      len(group.members), _reason(error))  # fmt: skip
            for part in group.members:
                if part.rows:
                    self._write(self._id_of(part), part.rows)  # split as needed, re-encoded
            return
        self.rows_written += written

    def _write_part(
        self,
        db: Database,
        batch_id: uuid.UUID,
        rows: Sequence[Sequence[Any]],
        refused: list[tuple[Sequence[Any], str]],
        batch: _Batch | None = None,
    ) -> int:
        unsent = self._unsent if self._tracking else {}
        try:
            written = self._copy(db, [batch_id], rows, batch)
        except _CONNECTION_ERRORS:
            raise
        except Exception as error:
            if db.connection is None or db.connection.closed:
                raise psycopg2.InterfaceError(f"connection lost: {_reason(error)}") from error
            if len(rows) == 1:
                if not isinstance(error, (psycopg2.Error, ValueError, TypeError)):
                    log.error(
                        "Unexpected error writing a row of %r: %r", self.table_name, rows[0],
                        exc_info=True,
                    )  # fmt: skip
                refused.append((rows[0], _reason(error)))
                unsent.pop(batch_id, None)
                return 0
            # Split: ids derived from the batch's, so a replay skips the parts already in.
            middle = len(rows) // 2
            if batch_id in unsent:
                del unsent[batch_id]
                unsent[uuid.uuid5(batch_id, "a")] = list(rows[:middle])
                unsent[uuid.uuid5(batch_id, "b")] = list(rows[middle:])
            return self._write_part(
                db, uuid.uuid5(batch_id, "a"), rows[:middle], refused
            ) + self._write_part(db, uuid.uuid5(batch_id, "b"), rows[middle:], refused)
        unsent.pop(batch_id, None)
        self.rows_written += written
        return written

    def _copy(
        self,
        db: Database,
        ids: Sequence[uuid.UUID],
        rows: Sequence[Sequence[Any]],
        batch: _Batch | None,
    ) -> int:
        """Write a batch and its id (a group: each of its ids) in one transaction.

        Returns the rows written.

        A batch complete when its COPY starts goes in one round trip: the id's INSERT and
        the COPY in one query string, run by the server as one implicit transaction (the
        connection in autocommit for it). Each libpq call the thread makes is a time it has
        to win the interpreter back from the producer, so fewer calls per batch is what
        lets the writer keep up; an id already recorded fails the INSERT before the COPY
        starts. A live group (its batch still filling) is sent as its chunks come and goes
        on with the batches that follow (:meth:`_follow`), in an explicit transaction:
        ``BEGIN; COPY``, then each batch's id with its row count and the COMMIT in a second
        round trip. A failure anywhere rolls back everything.
        """
        members = batch.members if batch is not None and batch.members else None
        connection = db.require_connection()
        if self._copy_sql is None:
            self._copy_sql = (
                sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)")
                .format(
                    ident(self.table_name, "table name"),
                    sql.SQL(", ").join(ident(c, "column name") for c in self.columns),
                )
                .as_string(connection)
            )
        live = batch is not None and not batch.complete
        if live:
            query = "BEGIN; " + self._copy_sql
        else:
            query = f"{self._claims(connection, ids, rows, members)}; {self._copy_sql}"
        stream: CopyStream | _BatchStream
        if batch is not None and batch.encoded:
            stream = _BatchStream(self, batch)
        else:
            encoder = self._encoder or RowEncoder(db.column_types(self.table_name, self.columns))
            stream = CopyStream(encoder, rows)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.copy_expert(query, stream, size=1 << 20)
                if live:
                    cursor.execute(f"{self._claims(connection, ids, rows, members)}; COMMIT")
        except psycopg2.Error as error:
            if batch is not None:
                self._complete_taken(batch)  # its rows are final: split or spooled
            self._roll_back(connection)
            if stream.error is not None:  # a bad row, not the server: say which
                raise stream.error from None
            if batches.already_written(error) and members is None:
                log.info("Batch %s is already in %r: not written twice", ids[0],
                         self.table_name)  # fmt: skip
                return 0
            raise
        except BaseException:
            if batch is not None:
                self._complete_taken(batch)
            raise
        finally:
            stream.close()
            if not connection.closed:
                connection.autocommit = False
        return stream.rows

    def _claims(
        self,
        connection: Any,
        ids: Sequence[uuid.UUID],
        rows: Sequence[Sequence[Any]],
        members: list[_Batch] | None,
    ) -> str:
        """Return the statement recording batch ids with their row counts, as text.

        One id for ``rows``, or (a group) each member's id with its rows.
        """
        if members is None:
            claims = [(str(ids[0]), len(rows))]
        else:
            claims = [(str(self._id_of(part)), len(part.rows)) for part in members if part.rows]
        return batches.claiming(BATCH_TABLE, claims, self.table_name).as_string(connection)

    @staticmethod
    def _roll_back(connection: Any) -> None:
        """End the explicit transaction of a live batch that failed (if the link still works)."""
        if connection.closed or (
            connection.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        ):
            return
        try:
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")
        except psycopg2.Error as error:
            log.debug("Rolling back a failed batch: %s", _reason(error))

    def _reject(self, refused: Sequence[tuple[Sequence[Any], str]]) -> None:
        path = self.spool.reject(self.table_name, self.columns, refused)
        self.rows_rejected += len(refused)
        first = refused[0][1]
        self.last_error = f"{len(refused)} rows rejected: {first}"
        log.error(
            "%d row(s) of %r rejected (%s); kept with the reasons in %s",
            len(refused), self.table_name, first, path,
        )  # fmt: skip

    def _new_id(self) -> uuid.UUID:
        """Return a new batch id, unique without a system call.

        ``uuid4()`` reads the kernel's random source with the interpreter let go, and the
        thread would then wait up to a switch interval to get it back from the producer:
        an id derived from the writer's random base and a counter costs no such wait.
        """
        return uuid.uuid5(self._id_base, str(next(self._id_count)))

    def _replay(self, look: bool = True) -> None:
        """Write the spooled batches, in order (and end an outage's story).

        Listing the spool folder lets go of the interpreter (see :meth:`_new_id`), so
        while rows stream in and nothing was spooled, the folder is listed only on a
        flush, a close, a quiet interval, or once a second (another writer's leftovers).
        """
        now = time.monotonic()
        if not (self._spool_waiting or look or now - self._spool_looked >= 1.0):
            self._back()
            return
        self._spool_looked = now
        self._tracking = False  # a spool file stays until written: nothing else to keep
        try:
            self._replay_files()
        finally:
            self._tracking = True
        self._spool_waiting = False
        self._back()

    def _replay_files(self) -> None:
        for path in self.spool.batches():
            try:
                batch_id, rows = Spool.read(path)
            except (OSError, ValueError) as error:
                target = self.spool.quarantine(path, _reason(error))
                log.error("Spool file %s cannot be read (%s): moved to %s",
                          path, _reason(error), target)  # fmt: skip
                continue
            before = self.rows_written
            self._write(batch_id, rows)
            replayed = self.rows_written - before
            self.rows_replayed += replayed
            self._replayed_in_outage += replayed
            path.unlink()
