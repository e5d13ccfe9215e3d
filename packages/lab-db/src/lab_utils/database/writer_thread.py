"""The buffered writer's thread: it writes batches, rides out outages, replays the spool.

An outage is told as one story (a WARNING at its start, reminders, a WARNING at its end); an
unexpected error sends the batch to the spool and the thread carries on; a thread that dies
anyway keeps the rows it held (:meth:`WriterThread._rescue`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg2

from lab_utils.database import batches
from lab_utils.database.batches import BATCH_TABLE
from lab_utils.database.spool import Spool
from lab_utils.database.writer_errors import CONNECTION_ERRORS, UnavailableError, reason_of
from lab_utils.database.writer_queue import Batch
from lab_utils.database.writer_refusals import RefusalSplit

# The writer's one logger, whichever of its modules speaks: the name users filter on.
log = logging.getLogger("lab_utils.database.writer")


class WriterThread(RefusalSplit):
    """The background thread of the buffered writer (a base of the writer)."""

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
        # The rows the batch in hand had refused so far (a batch being replayed keeps its
        # refused rows in its spool file): kept under its id, so never twice.
        refused, refusing = self._refused_now, self._refusing
        self._unsent, self._refused_now = {}, []
        unstorable: list[tuple[Sequence[Any], str]] = []
        spooled = lost = 0
        for batch_id, rows in pending:
            good, bad = Spool.storable(rows)
            unstorable += bad
            if not good:
                continue
            try:
                stored = self.spool.put(batch_id, good)
            except Exception as failure:  # the spool folder itself fails
                unstorable += [(row, f"could not be spooled: {reason_of(failure)}") for row in good]
                continue
            if stored:
                spooled += len(good)
                self.rows_spooled += len(good)
                self._spool_waiting = True
            else:
                lost += len(good)
                self.rows_lost += len(good)
        files: list[Path] = []
        failed = ""
        rejected = 0
        for aside, key in ((refused, refusing), (unstorable, None)):
            if not aside:
                continue
            try:
                path = self._keep_refused(aside, key)
            except Exception as failure:  # the folder fails too: say so, count them lost
                lost += len(aside)
                self.rows_lost += len(aside)
                failed = reason_of(failure)
                continue
            if path is not None:
                files.append(path)
                rejected += len(aside)
        kept: Path | str = files[0] if len(files) == 1 else self.spool.folder / "rejected"
        if failed and not files:
            kept = f"nowhere ({failed})"
        self.last_error = f"writer stopped: {reason_of(error)}"
        log.error(
            "The writer of %r stopped (%s): %d rows it held were spooled to %s (replayed by"
            " the next writer on that folder), %d rejected to %s, %d lost (spool full);"
            " add(), flush() and close() raise from now on",
            self.table_name, reason_of(error), spooled, self.spool.folder, rejected, kept, lost,
            exc_info=error,
        )  # fmt: skip

    def _loop(self) -> None:
        backoff = 0.5
        while True:
            taken = self._take()
            if taken is None and not self.spool.batches():
                return
            batch = taken or Batch(encoded=False)
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
            except (UnavailableError, *CONNECTION_ERRORS) as error:
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
                self.last_error = reason_of(error)
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

    def _sleep(self, backoff: float) -> float:
        with self._changed:
            if not self._closing:
                self._changed.wait(backoff)
        return min(backoff * 2, self.max_backoff)

    def _outage(self, error: BaseException) -> None:
        """Tell the outage as one story: a WARNING at its start, then reminders."""
        self._disconnect()
        reason = reason_of(error)
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
        except CONNECTION_ERRORS:
            raise
        except psycopg2.Error as error:  # pruning can wait: the rows matter, not the ids
            log.warning("Pruning %s failed: %s", BATCH_TABLE, reason_of(error))
            return
        if pruned:
            log.info("Pruned %d batch ids older than %s from %s", pruned, keep, BATCH_TABLE)

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
                target = self.spool.quarantine(path, reason_of(error))
                log.error("Spool file %s cannot be read (%s): moved to %s",
                          path, reason_of(error), target)  # fmt: skip
                continue
            before = self.rows_written
            self._write(batch_id, rows)
            replayed = self.rows_written - before
            self.rows_replayed += replayed
            self._replayed_in_outage += replayed
            path.unlink()
