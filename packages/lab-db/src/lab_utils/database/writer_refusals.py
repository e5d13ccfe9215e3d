"""The buffered writer's refusal split: rows the server refuses are isolated and kept aside.

A batch refused for its content is split in halves (each with an id derived from the batch's,
so a replay skips the parts already in) until the refused rows are alone; those go to the
spool's ``rejected/`` with the server's reason. Rows that cannot be written now go to the spool.

Each row ends in one place, once, even when the split is cut short (the link lost, the
thread dying). A batch in hand keeps its refused rows in ``rejected/`` and spools the parts
not yet committed, each with its id. A batch replayed from a spool file keeps the file until
its split is done: cut short, the next replay splits it again the same way (the parts
committed are skipped by their ids, the refused rows are refused again), and its refused
rows are kept once, in a ``rejected/`` file named by the batch's id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
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

    _refusing: uuid.UUID | None = None
    """The batch in hand whose refused rows ``_refused_now`` holds (their rejected/ file's id)."""

    def _write(
        self, batch_id: uuid.UUID, rows: Sequence[Sequence[Any]], batch: Batch | None = None
    ) -> int:
        """Write a batch; isolate and keep aside rows refused for their content.

        ``batch``, when given, holds ``rows`` and their encoded chunks (it may be live).
        The refused rows are kept in ``rejected/`` once the split is done. Of a batch in hand
        they are also in ``_refused_now`` meanwhile, for whoever spools what is left should
        the split be cut short; a replayed batch keeps them only here, as its spool file
        keeps every row until the split is done.
        """
        db = self._database()
        refused: list[tuple[Sequence[Any], str]] = []
        if self._tracking:
            self._refused_now, self._refusing = refused, batch_id
        written = self._write_part(db, batch_id, rows, refused, batch)
        if refused:
            self._reject(refused, batch_id)
        if self._tracking:
            self._refused_now = []  # kept (dying before this, the rescue finds their file)
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

    def _keep_refused(
        self, refused: Sequence[tuple[Sequence[Any], str]], batch_id: uuid.UUID | None
    ) -> Path | None:
        """Write refused rows to ``rejected/`` and count them; None if the batch's are there.

        A batch whose refused rows were kept before (its replay cut short after that, by a
        dying thread) has them kept already: they are not written, nor counted, twice.

        Raises
        ------
        OSError
            The spool's folder cannot take the file.
        """
        if batch_id is not None and self.spool.rejected_of(batch_id) is not None:
            return None
        path = self.spool.reject(self.table_name, self.columns, refused, batch_id)
        self.rows_rejected += len(refused)
        return path

    def _reject(
        self, refused: Sequence[tuple[Sequence[Any], str]], batch_id: uuid.UUID | None = None
    ) -> None:
        first = refused[0][1]
        try:
            path = self._keep_refused(refused, batch_id)
        except Exception as failure:
            if not self._tracking:
                raise  # a replayed batch: its spool file stays, a later replay keeps them
            # The folder fails: there is nowhere else for rows the server refuses.
            self.rows_lost += len(refused)
            self.last_error = f"{len(refused)} rows refused and lost: {reason_of(failure)}"
            log.exception(
                "%d row(s) of %r refused (%s) cannot be kept in %s: lost",
                len(refused), self.table_name, first, self.spool.folder / "rejected",
            )  # fmt: skip
            return
        if path is None:
            log.info("The %d refused row(s) of batch %s are kept in %s already",
                     len(refused), batch_id, self.spool.folder / "rejected")  # fmt: skip
            return
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
            self._reject(self._refused_now, self._refusing)
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
