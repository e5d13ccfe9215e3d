"""The buffered writer's COPY: a batch, or batches sent together, with its ids in one transaction.

:class:`BatchStream` is the source psycopg2 reads a batch from while the producers still fill
it; :class:`StreamedCopy` runs the COPY on the writer's own connection.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg2
from psycopg2 import sql

from lab_utils.database import batches
from lab_utils.database.batches import BATCH_TABLE
from lab_utils.database.binary_copy import HEADER, TRAILER, CopyStream, RowEncoder
from lab_utils.database.database import Database
from lab_utils.database.identifiers import ident
from lab_utils.database.writer_errors import UnavailableError, reason_of
from lab_utils.database.writer_queue import Batch, BatchQueue

# The writer's one logger, whichever of its modules speaks: the name users filter on.
log = logging.getLogger("lab_utils.database.writer")

# Seconds a COPY waits for the first row of a batch it took on before the producers added
# to it: producers that keep the thread busy fill it within microseconds; producers that
# paused get their rows committed now, not at the end of ``flush_interval``.
QUIET = 0.01


class BatchStream:
    """The file-like object psycopg2's ``copy_expert`` reads a batch from, chunk by chunk.

    A read waits (the interpreter let go) for the next chunk while a batch is open, and
    completes it itself on a flush, a close, or at the deadline. A live group goes on with
    the batches that follow (:meth:`BatchQueue._follow`): while the producers keep the
    thread busy, one COPY carries them all, as ``insert_many``'s does. A batch joined
    while still empty that gets no row within ``QUIET`` seconds ends the COPY.
    """

    def __init__(self, writer: BatchQueue, batch: Batch) -> None:
        self._writer = writer
        self._group = batch
        self._parts = batch.parts()  # a live group's list: it grows as batches join
        self._index = 0
        self._started = False
        self._ended = False
        self._quiet_since: float | None = None  # waiting for an empty batch's first row
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
        pieces: list[bytes | bytearray] = [] if self._started else [HEADER]
        self._started = True
        with writer._changed:
            collected = False
            while True:
                batch = self._parts[self._index]
                if batch.chunks:
                    pieces += batch.chunks
                    batch.chunks.clear()
                    collected = True
                if batch.complete:
                    if self._index + 1 < len(self._parts) or (
                        not group.complete and writer._follow(group)
                    ):
                        self._index += 1
                        self._quiet_since = None
                        continue
                    self._ended = True
                    self.rows = group.count()
                    pieces.append(TRAILER)
                    break
                if pieces:
                    break
                now = time.monotonic()
                remaining = group.deadline - now
                if not batch.rows:
                    self._quiet_since = self._quiet_since or now
                    quiet = self._quiet_since + QUIET - now
                    if quiet <= 0:  # the producers paused: end here
                        writer._complete(batch)
                        group.complete = True
                        continue
                    remaining = min(remaining, quiet)
                else:
                    self._quiet_since = None
                if remaining <= 0 or writer._flush_requested or writer._closing:
                    writer._complete(batch)
                    continue
                writer._changed.wait(remaining)
            if collected:
                writer._collected()
        return b"".join(pieces)

    def readline(self, size: int = -1) -> bytes:
        """Binary COPY has no lines; psycopg2 only calls :meth:`read`."""
        return self.read(size)

    def close(self) -> None:
        """Nothing to stop."""


class StreamedCopy(BatchQueue):
    """The COPY of the buffered writer, on its own connection (a base of the writer)."""

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
            raise UnavailableError(reason_of(error)) from error
        self._use_types(types)
        self._db = db
        return db

    def _disconnect(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            try:
                db.close()
            except psycopg2.Error as error:
                log.debug("Closing the writer's broken connection: %s", reason_of(error))

    def _copy(
        self,
        db: Database,
        ids: Sequence[uuid.UUID],
        rows: Sequence[Sequence[Any]],
        batch: Batch | None,
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
        stream: CopyStream | BatchStream
        if batch is not None and batch.encoded:
            stream = BatchStream(self, batch)
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
            batches.roll_back(connection)
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
        members: list[Batch] | None,
    ) -> str:
        """Return the statement recording batch ids with their row counts, as text.

        One id for ``rows``, or (a group) each member's id with its rows.
        """
        if members is None:
            claims = [(str(ids[0]), len(rows))]
        else:
            claims = [(str(self._id_of(part)), len(part.rows)) for part in members if part.rows]
        return batches.claiming(BATCH_TABLE, claims, self.table_name).as_string(connection)
