"""The daily file: one file per local day, correct across midnight and DST, nothing lost."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab_utils.custom_logging import CustomTimedRotatingFileHandler, JsonLineFormatter


@pytest.fixture
def zurich() -> Iterator[None]:
    """Run the test in a zone with daylight-saving changes."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Zurich"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def _record(at: dt.datetime, message: str) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "daq", "levelno": 20, "levelname": "INFO", "msg": message}
    )
    record.created = at.timestamp()
    return record


def _handler(tmp_path: Path) -> CustomTimedRotatingFileHandler:
    handler = CustomTimedRotatingFileHandler(str(tmp_path / "logs"), "cryo", ".log")
    handler.setFormatter(JsonLineFormatter())
    return handler


def _messages(path: Path) -> list[str]:
    return [json.loads(line)["message"] for line in path.read_text().splitlines()]


def test_file_name_and_directory(tmp_path: Path) -> None:
    handler = _handler(tmp_path)
    handler.emit(_record(dt.datetime.now(), "hello"))
    handler.close()
    (file,) = (tmp_path / "logs").iterdir()
    assert file.name == f"cryo_{dt.date.today().isoformat()}.log"
    assert handler.path == str(tmp_path / "logs")


def test_records_around_midnight_go_to_their_own_day(tmp_path: Path, zurich: None) -> None:
    handler = _handler(tmp_path)
    day = dt.datetime(2026, 11, 24, 23, 59, 59)
    offsets = [0, 0.5, 1.5, 2, 86_402]  # seconds after 23:59:59
    for n, offset in enumerate(offsets):
        handler.emit(_record(day + dt.timedelta(seconds=offset), f"r{n}"))
    handler.close()
    logs = tmp_path / "logs"
    assert _messages(logs / "cryo_2026-11-24.log") == ["r0", "r1"]
    assert _messages(logs / "cryo_2026-11-25.log") == ["r2", "r3"]
    assert _messages(logs / "cryo_2026-11-26.log") == ["r4"]


@pytest.mark.parametrize(
    "change", [dt.date(2026, 3, 29), dt.date(2026, 10, 25)], ids=["spring", "autumn"]
)
def test_dst_change_days_roll_at_local_midnight(
    tmp_path: Path, zurich: None, change: dt.date
) -> None:
    handler = _handler(tmp_path)
    start = dt.datetime.combine(change, dt.time(0, 30))
    # Every 30 minutes across the 23- or 25-hour day and into the next one.
    stamps = [start.timestamp() + 1800 * n for n in range(52)]
    for n, stamp in enumerate(stamps):
        handler.emit(_record(dt.datetime.fromtimestamp(stamp), f"r{n}"))
    handler.close()
    files = {p.name: _messages(p) for p in (tmp_path / "logs").iterdir()}
    total = sum(len(m) for m in files.values())
    assert total == len(stamps)
    for name, messages in files.items():
        day = name.removeprefix("cryo_").removesuffix(".log")
        for message in messages:
            stamp = stamps[int(message[1:])]
            assert dt.date.fromtimestamp(stamp).isoformat() == day


def test_rollover_at_is_next_local_midnight(tmp_path: Path, zurich: None) -> None:
    handler = _handler(tmp_path)
    handler.emit(_record(dt.datetime(2026, 3, 28, 12, 0), "before spring change"))
    handler.close()
    assert dt.datetime.fromtimestamp(handler.rolloverAt) == dt.datetime(2026, 3, 29, 0, 0)
