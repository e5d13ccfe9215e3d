"""The writer's on-disk spool: batches that could not be written yet, one file each."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    return value


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
        """Store a batch durably; False when the spool is full."""
        lines = "".join(json.dumps([_encode(v) for v in row]) + "\n" for row in rows)
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
    def read(path: Path) -> tuple[uuid.UUID, list[list[Any]]]:
        """Return the batch id and rows of a spooled file."""
        batch_id = uuid.UUID(path.stem.split("-", 1)[1])
        with path.open(encoding="utf-8") as handle:
            rows = [[_decode(v) for v in json.loads(line)] for line in handle if line.strip()]
        return batch_id, rows
