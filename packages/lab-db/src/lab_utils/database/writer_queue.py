"""The buffered writer's batch queue: the batch the producers fill, those sealed, the one sent.

Producers fill the open batch under the writer's lock; a full batch is sealed (with its binary
COPY form when ``add()`` encodes) and handed to the thread, which takes the batches waiting
together, or the open batch itself once it has a chunk (a live batch, sent while it fills).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from lab_utils.database.binary_copy import RowEncoder
from lab_utils.database.column_types import column_type
from lab_utils.database.database import Database
from lab_utils.database.spool import Spool


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
CHUNK = 1024

# How long a producer that handed over a chunk waits for the thread to take it (seconds),
# and after how many such waits in vain it stops waiting until the thread takes work; see
# BatchQueue._let_thread_collect.
COLLECT_WAIT = 0.0005
MISSES_BEFORE_GIVING_UP = 8

# Seconds an idle writer's thread sleeps between looks at its spool folder (batches another
# writer left there); a producer's first row wakes it at once.
IDLE_LOOK = 60.0


class Batch:
    """Rows on their way to one COPY, and their binary COPY form a chunk at a time.

    The producers fill the open batch; the thread may start its COPY while it is still
    open (it is then ``live``) and send each chunk as it is handed over, so that little
    is left to send when the batch completes (by size, time, flush or close).
    """

    __slots__ = ("chunks", "complete", "deadline", "encoded", "id", "live", "members", "rows")

    def __init__(self, encoded: bool) -> None:
        self.rows: list[Sequence[Any]] = []
        self.chunks: deque[bytes | bytearray] = deque()  # encoded rows handed over, not yet sent
        self.encoded = encoded  # add() encodes its rows (lab-db[fast])
        self.complete = False  # no row will be added
        self.live = False  # the thread is sending it
        self.deadline = 0.0  # when the thread completes it if its producers have not
        self.members: list[Batch] = []  # the batches sent together in this one COPY
        self.id: uuid.UUID | None = None  # recorded with the rows (given by the thread)

    @classmethod
    def group(cls, members: list[Batch], live: bool = False) -> Batch:
        """Return batches sent in one COPY and transaction, each keeping its own id.

        A ``live`` group goes on taking the batches that follow while it is sent.
        """
        if len(members) == 1 and not live:
            return members[0]
        batch = cls(members[0].encoded)
        batch.members = members
        batch.complete = not live
        return batch

    def parts(self) -> list[Batch]:
        """Return the batches with rows of their own: the members, or this batch."""
        return self.members or [self]

    def count(self) -> int:
        """Return the rows of this batch, or of its members."""
        return sum(len(part.rows) for part in self.parts())


class BatchQueue:
    """The batch queue of :class:`~lab_utils.database.writer.BufferedWriter` (its base).

    Every method that says "the lock held" is called with ``_changed`` acquired.
    """

    # The writer's state, made by BufferedWriter.__init__ and shared by the parts of the
    # writer (the producers' side, the batch queue, the COPY, the thread).
    table_name: str
    columns: list[str]
    batch_size: int
    flush_interval: float
    max_backoff: float
    reminder_interval: float
    keep_batch_ids: dt.timedelta
    max_queued_batches: int
    spool: Spool
    last_error: str | None
    rows_written: int
    rows_spooled: int
    rows_replayed: int
    rows_rejected: int
    rows_lost: int
    reconnects: int
    _template: Database
    _where: str
    _lock: threading.Lock
    _changed: threading.Condition
    _open: Batch
    _rows: list[Sequence[Any]]
    _stop_at: int
    _stopped: bool
    _data: bytearray | None
    _sealed: deque[Batch]
    _live: Batch | None
    _encoder: RowEncoder | None
    _format_row: Callable[[Sequence[Any], Any, bytearray], None] | None
    _transformer: Any
    _signature: tuple[type, ...]
    _closing: bool
    _flush_requested: bool
    _idle: threading.Event
    _db: Database | None
    _death: BaseException | None
    _down_since: float | None
    _last_report: float
    _replayed_in_outage: int
    _pruned_at: float | None
    _copy_sql: str | None
    _id_base: uuid.UUID
    _id_count: Iterator[int]
    _spool_waiting: bool
    _spool_looked: float
    _unsent: dict[uuid.UUID, list[Sequence[Any]]]
    _refused_now: list[tuple[Sequence[Any], str]]
    _tracking: bool
    _thread: threading.Thread
    _collections: int
    _missed: int
    _asleep: bool

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

    def _new_open(self, encoded: bool) -> None:
        """Start a new open batch (the lock held)."""
        self._open = Batch(encoded)
        self._rows = self._open.rows
        self._stop_at = min(self.batch_size, CHUNK)

    def _hand_over(self) -> None:
        """Make the open batch's newest encoded rows a chunk the thread can send (lock held)."""
        data = self._data
        if data:
            self._open.chunks.append(data)  # never written again: no copy
            self._data = bytearray()
        self._stop_at = min(self.batch_size, (len(self._rows) // CHUNK + 1) * CHUNK)
        self._changed.notify_all()

    def _chunk_done(self) -> None:
        """Hand over a chunk, or the whole batch when it is full (a producer, the lock held).

        Also called for the first row added while the thread sleeps (see :meth:`_take`).
        """
        if self._asleep:
            self._asleep = False
            self._stop_at = min(self.batch_size, (len(self._rows) // CHUNK + 1) * CHUNK)
            self._changed.notify_all()  # its flush_interval starts now
            if len(self._rows) < self._stop_at:
                return
        if len(self._rows) >= self.batch_size:
            self._seal()
            if self._backlog() > self.max_queued_batches:
                self._wait_for_room()
        else:
            self._hand_over()
        self._let_thread_collect()

    def _let_thread_collect(self) -> None:
        """Wait (a producer, the lock held) at most ``COLLECT_WAIT`` for the thread to take work.

        The producer and the thread share the interpreter. A thread back from libpq (a
        round trip, a chunk in the socket) waits for it, and a producer running Python code
        lets go only when asked, after the switch interval (5 ms by default, the server idle
        meanwhile). Waiting here lets go at once, for as long as the thread takes to wake:
        tens of microseconds per chunk, where a zero sleep costs 50-80 us of timer slack on
        Linux (CPython 3.11+) and gives no guarantee. A thread held by a full socket (the
        server behind) paces the producer by at most the wait; one that missed
        ``MISSES_BEFORE_GIVING_UP`` waits in a row (a table lock, an outage) is not waited
        for until it takes work again. A thread woken late once (it was queued behind the
        server's process for the core) is still waited for: not waiting left it without
        the interpreter for a switch interval and the server without rows.
        """
        if self._missed >= MISSES_BEFORE_GIVING_UP:
            return
        seen = self._collections
        deadline = time.monotonic() + COLLECT_WAIT
        while self._collections == seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._missed += 1
                return
            self._changed.wait(remaining)

    def _collected(self) -> None:
        """Note that the thread took work (the lock held): producers may stop waiting."""
        self._collections += 1
        self._missed = 0
        self._changed.notify_all()

    def _seal(self) -> None:
        """Complete the open batch and hand it to the thread (with the lock held)."""
        batch = self._open
        if batch.rows:
            self._hand_over()
            batch.complete = True
            if not batch.live:  # else the thread has it already
                self._sealed.append(batch)
            self._new_open(encoded=batch.encoded)

    def _complete(self, batch: Batch) -> None:
        """Complete ``batch`` if it is the open one (the lock held): no row joins it now."""
        if batch is self._open:
            self._seal()
            if batch is self._open:  # it had no row: the producers get a new one
                self._new_open(encoded=batch.encoded)
        batch.complete = True

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

    def _drain(self) -> list[Sequence[Any]]:
        """Take every row still in memory (the thread has stopped)."""
        with self._changed:
            self._open.live = False  # a stopped thread sends nothing: the rows are here
            self._seal()
            rows = [row for batch in self._sealed for row in batch.rows]
            self._sealed.clear()
        return rows

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

    def _take(self) -> Batch | None:
        """Wait for a batch (by size, time, flush or close); None when closing and empty.

        A complete batch comes first; else the open batch once it has a chunk of encoded
        rows: its COPY starts then and goes on while the producers fill it (it is ``live``,
        completed at the latest ``flush_interval`` after this call began).

        With nothing to write (no row, no spooled batch, no outage) the thread sleeps until a
        producer's first row, which wakes it (``add()`` stops at one row meanwhile), instead
        of waking every ``flush_interval``: an idle writer costs no CPU and does not take
        the interpreter from other writers' producers. It looks at its spool folder every
        ``IDLE_LOOK`` seconds.
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
                if self._open.rows or self._spool_waiting or self._down_since is not None:
                    self._changed.wait(remaining)
                    continue
                self._idle.set()  # nothing queued: a flush() waiting for that may return
                self._asleep, self._stop_at = True, 1
                woken = self._changed.wait(IDLE_LOOK)
                if self._asleep:  # not by a row: add() stops at a chunk again
                    self._asleep = False
                    self._stop_at = min(self.batch_size, CHUNK)
                if not woken:
                    break  # a look at the spool folder
                deadline = time.monotonic() + self.flush_interval
            ending = self._flush_requested or self._closing
            if self._sealed:
                batch = self._take_sealed(live=not ending)
            elif self._open.chunks and not ending:
                self._open.live = True
                batch = Batch.group([self._open], live=True)
            else:
                self._seal()
                if not self._sealed:
                    self._flush_requested = False
                    self._idle.set()
                    return None if self._closing else Batch(encoded=False)
                batch = self._take_sealed()
            batch.deadline = deadline
            self._live = batch
            self._collected()  # producers waiting for room, or for the thread to come
            return batch

    def _take_sealed(self, live: bool = False) -> Batch:
        """Take every complete batch waiting, as one (the lock held).

        A thread behind its producers then pays the fixed cost of a COPY (its round trips,
        each a wait for the interpreter) once for all of them: it catches up instead of
        falling further behind with small batches. Batches encoded on ``add()`` are taken
        ``live`` unless a flush or close is asking: the COPY goes on with the batches that
        follow, so the server never waits for a commit and a new COPY between them.
        """
        members = [self._sealed.popleft()]
        while self._sealed and self._sealed[0].encoded == members[0].encoded:
            members.append(self._sealed.popleft())
        return Batch.group(members, live=live and members[0].encoded)

    def _follow(self, group: Batch) -> bool:
        """Add the next batch to a live group being sent; False: end its COPY (lock held).

        The group ends at its deadline (``flush_interval`` after it was taken: rows are
        committed at most that late), at ``max_queued_batches`` batches' worth of rows (what
        a crash can lose stays within what memory holds), or on a flush or close once it
        has taken the rows queued then.
        """
        if (
            time.monotonic() >= group.deadline
            or group.count() >= self.batch_size * self.max_queued_batches
        ):
            return False
        if self._flush_requested or self._closing:
            # What is queued now goes in this COPY: a second one would wait for this one's
            # commit while the server, done with it, waits for the rows.
            if not self._sealed and self._open.rows and self._open.encoded:
                self._seal()
            if not self._sealed or not self._sealed[0].encoded:
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

    def _complete_taken(self, batch: Batch) -> None:
        """Complete a batch whose write failed: its rows are final, to spool or split."""
        with self._changed:
            for part in batch.parts():
                self._complete(part)
            batch.complete = True

    def _new_id(self) -> uuid.UUID:
        """Return a new batch id, unique without a system call.

        ``uuid4()`` reads the kernel's random source with the interpreter let go, and the
        thread would then wait up to a switch interval to get it back from the producer:
        an id derived from the writer's random base and a counter costs no such wait.
        """
        return uuid.uuid5(self._id_base, str(next(self._id_count)))

    @staticmethod
    def _id_of(batch: Batch) -> uuid.UUID:
        assert batch.id is not None  # given when the thread took the batch
        return batch.id
