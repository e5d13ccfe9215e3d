"""Refused rows with nowhere to go: counted lost and said so, the writer carrying on."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from lab_utils.database import BufferedWriter, Constraint, Database, DataType

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
COLUMNS = ["time", "v"]


def _rows(count: int, offset: int = 0) -> list[list[Any]]:
    return [[START + dt.timedelta(seconds=offset + n), float(n)] for n in range(count)]


def test_a_refused_row_the_rejected_folder_cannot_take_is_counted_lost_and_logged(
    db: Database, raw: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db.create_timescale_db("gauge")
    db.new_column("gauge", "v", DataType.double, [Constraint.positive])
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "rejected").write_text("a file where the folder should be\n")
    writer = BufferedWriter(db, "gauge", COLUMNS, spool_dir=spool)
    rows = _rows(100)
    writer.add_many([*rows[:50], [START - dt.timedelta(days=1), -1.0], *rows[50:]])
    assert writer.flush(timeout=60)
    assert (writer.rows_written, writer.rows_rejected, writer.rows_lost) == (100, 0, 1)
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "1 row(s) of 'gauge' refused" in record.getMessage()
    assert "cannot be kept" in record.getMessage() and record.exc_info is not None
    assert writer.last_error is not None and "refused and lost" in writer.last_error
    writer.add_many(_rows(10, offset=1000))  # still writing
    writer.close()
    with raw.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM gauge")
        assert cursor.fetchone() == (110,)
