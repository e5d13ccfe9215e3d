"""The buffered writer's refusal split: rows the server refuses are isolated and kept aside.

A batch refused for its content is split in halves (each with an id derived from the batch's,
so a replay skips the parts already in) until the refused rows are alone; those go to the
spool's ``rejected/`` with the server's reason. Rows that cannot be written now go to the spool.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg2

from lab_utils.database.database import Database
from lab_utils.database.writer_copy import StreamedCopy
from lab_utils.database.writer_errors import CONNECTION_ERRORS, reason_of
from lab_utils.database.writer_queue import Batch

# The writer's one logger, whichever of its modules speaks: the name users filter on.
log = logging.getLogger("lab_utils.database.writer")


class RefusalSplit(StreamedCopy):
    """Writing a batch, split around refused rows, or keeping it (a base of the writer)."""

    def _write(
        self, batch_id: uuid.UUID, rows: Sequence[Sequence[Any]], batch: Batch | None = None
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

    def _write_group(self, group: Batch) -> None:
        """Write batches in one COPY; refused, they are written one by one."""
        db = self._database()
        # Rows encoded on add() are read from the members' chunks (a live group's grow as
        # it is sent); the others are encoded by the thread from the members' rows.
        rows = [] if group.encoded else [row for part in group.members for row in part.rows]
        try:
            written = self._copy(db, [], rows, group)
        except CONNECTION_ERRORS:
            raise
        except Exception as error:
            if db.connection is None or db.connection.closed:
                raise psycopg2.InterfaceError(f"connection lost: {reason_of(error)}") from error
            log.debug("A group of %d batches was refused (%s): one by one",
                      len(group.members), reason_of(error))  # fmt: skip
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
        batch: Batch | None = None,
    ) -> int:
        unsent = self._unsent if self._tracking else {}
        try:
            written = self._copy(db, [batch_id], rows, batch)
        except CONNECTION_ERRORS:
            raise
        except Exception as error:
            if db.connection is None or db.connection.closed:
                raise psycopg2.InterfaceError(f"connection lost: {reason_of(error)}") from error
            if len(rows) == 1:
                if not isinstance(error, (psycopg2.Error, ValueError, TypeError)):
                    log.error(
                        "Unexpected error writing a row of %r: %r", self.table_name, rows[0],
                        exc_info=True,
                    )  # fmt: skip
                refused.append((rows[0], reason_of(error)))
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

    def _reject(self, refused: Sequence[tuple[Sequence[Any], str]]) -> None:
        path = self.spool.reject(self.table_name, self.columns, refused)
        self.rows_rejected += len(refused)
        first = refused[0][1]
        self.last_error = f"{len(refused)} rows rejected: {first}"
        log.error(
            "%d row(s) of %r rejected (%s); kept with the reasons in %s",
            len(refused), self.table_name, first, path,
        )  # fmt: skip

    def _to_spool(self, batch_id: uuid.UUID, batch: list[Sequence[Any]]) -> None:
        try:
            stored = self.spool.put(batch_id, batch)
        except Exception as error:  # the spool folder itself fails: keep the rows elsewhere
            log.exception("Spool %s cannot store a batch", self.spool.folder)
            reason = f"could not be spooled: {reason_of(error)}"
            self._reject([(row, reason) for row in batch])
            return
        if stored:
            self._spool_waiting = True
            self.rows_spooled += len(batch)
        else:
            self.rows_lost += len(batch)
            log.error("Spool %s is full: %d rows lost", self.spool.folder, len(batch))

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

    def _spool_sealed(self) -> None:
        """During an outage, move every full batch from memory to the spool (in order)."""
        while True:
            with self._changed:
                if not self._sealed:
                    return
                rows = self._sealed.popleft().rows
                self._changed.notify_all()  # producers waiting for room
            self._to_spool(uuid.uuid4(), rows)
