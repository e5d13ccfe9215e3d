"""The writer's on-disk spool: batches that could not be written yet, one file each."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    return value


def _encode_safely(value: Any) -> Any:
    try:
        return _encode(value)
    except BaseException:  # even a value raising SystemExit: keep what we can
        # The row is kept in rejected/ because it could not be stored otherwise; what its
        # value raises when asked for its text belongs to the value, not to the process.
        try:
            return repr(value)
        except BaseException:
            return f"<unprintable {type(value).__name__}>"


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return dt.datetime.fromisoformat(value["t"])
    return value


class Spool:
    """A folder of batch files ``<sequence>-<batch id>.jsonl``, replayed in order.

    A batch file is written to a temporary name, fsynced and renamed, so a crash leaves
    either the whole batch or nothing. The folder holds at most ``max_bytes``; beyond that
    new batches are refused (and the writer reports the rows lost).
    """

    def __init__(self, folder: str | Path, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        existing = [int(p.name.split("-", 1)[0]) for p in self.folder.glob("*.jsonl")]
        self._sequence = max(existing, default=0)

    def size(self) -> int:
        """Bytes held by the spool."""
        return sum(p.stat().st_size for p in self.folder.glob("*.jsonl"))

    def batches(self) -> list[Path]:
        """Return the spooled batch files, oldest first."""
        return sorted(self.folder.glob("*.jsonl"), key=lambda p: int(p.name.split("-", 1)[0]))

    def put(self, batch_id: uuid.UUID, rows: Sequence[Sequence[Any]]) -> bool:
        """Store a batch durably; False when the spool is full.

        Values JSON cannot hold (numpy numbers, Decimal) are stored as their text, which
        the column types read back.
        """
        lines = "".join(json.dumps([_encode(v) for v in row], default=str) + "\n" for row in rows)
        if self.size() + len(lines) > self.max_bytes:
            return False
        self._sequence += 1
        final = self.folder / f"{self._sequence:012d}-{batch_id}.jsonl"
        temporary = final.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(final)
        return True

    @staticmethod
    def storable(
        rows: Sequence[Sequence[Any]],
    ) -> tuple[list[Sequence[Any]], list[tuple[Sequence[Any], str]]]:
        """Split rows into those :meth:`put` can store and those it cannot, with the reason.

        A value whose text cannot be made (its ``__str__`` or its time zone raising, even
        ``SystemExit``) makes its row unstorable: such a row goes to ``rejected/`` instead.
        """
        good: list[Sequence[Any]] = []
        bad: list[tuple[Sequence[Any], str]] = []
        for row in rows:
            try:
                json.dumps([_encode(v) for v in row], default=str)
            except BaseException as error:  # see above
                text = " ".join(str(error).split())
                reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
                bad.append((row, f"could not be spooled: {reason}"))
            else:
                good.append(row)
        return good, bad

    def oldest_age(self) -> float:
        """Seconds since the oldest spooled batch was stored (0 when empty)."""
        files = self.batches()
        return max(time.time() - files[0].stat().st_mtime, 0.0) if files else 0.0

    def reject(
        self,
        table: str,
        columns: Sequence[str],
        refused: Sequence[tuple[Sequence[Any], str]],
        batch_id: uuid.UUID | None = None,
    ) -> Path:
        """Keep rows the server refused, with its reasons, in ``rejected/``; return the file.

        One JSON object per line: ``table``, ``columns``, ``row`` and ``reason``. Values JSON
        cannot hold are stored as their ``repr``. The file is written to a temporary name,
        fsynced and renamed: it holds all the rows or does not exist.

        Parameters
        ----------
        table : str
            The table the rows were meant for.
        columns : sequence of str
            Its columns, in the order of the rows' values.
        refused : sequence of (row, reason)
            The rows, each with the reason it was refused.
        batch_id : uuid.UUID, optional
            The batch the rows were refused from: the file is named by it, so that
            :meth:`rejected_of` finds it (a batch replayed again keeps its rows once).
        """
        folder = self.folder / "rejected"
        folder.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        name = uuid.uuid4().hex[:8] if batch_id is None else str(batch_id)
        path = folder / f"{stamp}-{name}.jsonl"
        temporary = path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            for row, reason in refused:
                record = {"table": table, "columns": list(columns),
                          "row": [_encode_safely(v) for v in row], "reason": reason}  # fmt: skip
                handle.write(json.dumps(record, default=repr, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
        return path

    def rejected_of(self, batch_id: uuid.UUID) -> Path | None:
        """Return the ``rejected/`` file of batch ``batch_id`` (see :meth:`reject`), or None."""
        return next(iter((self.folder / "rejected").glob(f"*-{batch_id}.jsonl")), None)

    def quarantine(self, path: Path, reason: str) -> Path:
        """Move a batch file that cannot be read to ``rejected/``, with a note of why."""
        folder = self.folder / "rejected"
        folder.mkdir(exist_ok=True)
        target = folder / f"{path.stem}.unreadable"
        path.replace(target)
        target.with_suffix(".reason").write_text(reason + "\n", encoding="utf-8")
        return target

    @staticmethod
    def read(path: Path) -> tuple[uuid.UUID, list[list[Any]]]:
        """Return the batch id and rows of a spooled file."""
        batch_id = uuid.UUID(path.stem.split("-", 1)[1])
        with path.open(encoding="utf-8") as handle:
            rows = [[_decode(v) for v in json.loads(line)] for line in handle if line.strip()]
        return batch_id, rows
