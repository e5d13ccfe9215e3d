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


def _cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab_utils.custom_logging", *args],
        capture_output=True, text=True, timeout=30, check=False, **kwargs,
    )  # fmt: skip


def test_cli_version_before_or_after_the_command() -> None:
    from lab_utils.custom_logging import __version__

    for args in (["--version"], ["listen", "--version"]):
        result = _cli(*args)
        assert result.returncode == 0
        assert result.stdout == f"lab-log {__version__}\n"


def test_cli_usage_problems_exit_2() -> None:
    assert _cli().returncode == 2
    result = _cli("listen", "--min-level", "loud")
    assert result.returncode == 2
    assert "--min-level" in result.stderr


def test_cli_missing_config_is_one_error_line(tmp_path: Path) -> None:
    result = _cli("listen", "--port", "0", "--config", str(tmp_path / "nope.ini"))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: logging config file ") and "nope.ini not found" in line
    assert "Traceback" not in result.stderr


def _start(*args: str) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab_utils.custom_logging", "listen", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stderr is not None and proc.stdout is not None
    banner = (proc.stderr if "--json" in args else proc.stdout).readline()
    return proc, int(re.search(r":(\d+)$", banner.strip())[1])  # type: ignore[index]


def _send(port: int, *records: tuple[int, str]) -> None:
    handler = NonPickledSocketHandler("127.0.0.1", port)
    handler.setFormatter(logging.Formatter(ALARM_FORMAT, DATE_FORMAT))
    for level, message in records:
        handler.handle(
            logging.makeLogRecord(
                {"name": "cryo", "levelno": level, "levelname": logging.getLevelName(level),
                 "msg": message, "module": "pumps", "funcName": "check"}
            )
        )  # fmt: skip
        # One at a time: the listener handles connections in parallel threads.
        handler.flush()
    handler.close()


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_cli_json_prints_one_object_per_alarm() -> None:
    proc, port = _start("--json")
    try:
        _send(port, (logging.ERROR, "He level low"), (logging.WARNING, 'quote " and {brace}'))
        assert proc.stdout is not None
        lines = [json.loads(proc.stdout.readline()) for _ in range(2)]
    finally:
        _stop(proc)
    keys = ("levelname", "name", "module", "funcName", "message")
    assert [tuple(d[k] for k in keys) for d in lines] == [
        ("ERROR", "cryo", "pumps", "check", "He level low"),
        ("WARNING", "cryo", "pumps", "check", 'quote " and {brace}'),
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[0]["asctime"])


def test_cli_min_level_hides_lower_alarms() -> None:
    proc, port = _start("--min-level", "error", "--json")
    try:
        _send(port, (logging.WARNING, "only a warning"), (logging.ERROR, "a real error"))
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
    finally:
        _stop(proc)
    assert first["message"] == "a real error"
