"""The alarm console: ``python -m lab_utils.custom_logging listen`` and AlarmListener."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lab_utils.custom_logging import AlarmListener, NonPickledSocketHandler, parse_alarms
from lab_utils.custom_logging.formatters import ALARM_FORMAT, DATE_FORMAT


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()


def test_parse_one_and_glued_records() -> None:
    one = (
        "{cryo} --date {2026-11-24 10:00:00} --level {ERROR} --app {cryo} --module {m}"
        " --function {f} --message {a {b} c}"
    )
    glued = one + one.replace("ERROR", "WARNING").replace("a {b} c", "second")
    records = list(parse_alarms(glued))
    assert [(r.name, r.levelname, r.module, r.funcName, r.getMessage()) for r in records] == [
        ("cryo", "ERROR", "m", "f", "a {b} c"),
        ("cryo", "WARNING", "m", "f", "second"),
    ]
    assert records[0].levelno == logging.ERROR


def test_handler_to_listener_every_record_once() -> None:
    collect = _Collect()
    server = AlarmListener("127.0.0.1", 0, [collect])
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        handler = NonPickledSocketHandler("127.0.0.1", server.port)
        handler.setFormatter(logging.Formatter(ALARM_FORMAT, DATE_FORMAT))
        logger = logging.getLogger("listener-test")
        logger.propagate = False
        logger.addHandler(handler)
        for n in range(20):
            logger.error("valve %d stuck {open}", n)
        handler.close()
        logger.removeHandler(handler)
        with collect.changed:
            collect.changed.wait_for(lambda: len(collect.records) == 20, timeout=20)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert sorted(r.getMessage() for r in collect.records) == sorted(
        f"valve {n} stuck {{open}}" for n in range(20)
    )
    assert {r.funcName for r in collect.records} == {"test_handler_to_listener_every_record_once"}


def test_cli_prints_coloured_records_and_forwards_to_file(tmp_path: Path, ini: Any) -> None:
    config = ini(
        f"[FileLogger]\nactive = 1\nlog_path = {tmp_path / 'central'}\nlog_basename = alarms\n"
        "log_extension = .jsonl\nlog_level = WARNING\n"
    )
    # A pipe is no terminal: colour here because the user forces it.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FORCE_COLOR": "1"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab_utils.custom_logging", "listen", "--port", "0",
         "--config", config],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        port = int(re.search(r":(\d+)$", banner.strip())[1])  # type: ignore[index]
        handler = NonPickledSocketHandler("127.0.0.1", port)
        handler.setFormatter(logging.Formatter(ALARM_FORMAT, DATE_FORMAT))
        handler.handle(
            logging.makeLogRecord(
                {"name": "cryo", "levelno": 40, "levelname": "ERROR", "msg": "He level low"}
            )
        )
        handler.close()
        line = proc.stdout.readline()
        assert "\x1b[31mERROR\x1b[0m" in line
        assert "He level low" in line
        deadline = time.monotonic() + 20
        files: list[Path] = []
        while time.monotonic() < deadline and not files:
            files = list((tmp_path / "central").glob("alarms_*.jsonl"))
            time.sleep(0.05)
        # The file handler writes on the listener's connection thread; wait for the line.
        while time.monotonic() < deadline and not files[0].read_text():
            time.sleep(0.05)
        assert json.loads(files[0].read_text().splitlines()[0])["message"] == "He level low"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_cli_reports_a_busy_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "lab_utils.custom_logging", "listen", "--port", str(port)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert len(result.stderr.splitlines()) == 1
