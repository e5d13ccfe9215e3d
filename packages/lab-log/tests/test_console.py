"""Colour goes to terminals only; the journal gets its own layout; NO_COLOR wins.

Each case runs a real Python process whose standard output is a real pseudo-terminal
(``pty.openpty()``) or a real pipe, as a daemon started by hand or by systemd would have.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

COLOUR = re.compile(r"\x1b\[\d+m")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")

CHILD = """
import sys
from lab_utils.custom_logging import configure_logging, getLogger, shutdown_logging
config = sys.argv[1] if sys.argv[1] != "-" else None
journal = {"yes": True, "no": False, "-": None}[sys.argv[2]]
configure_logging(config, logger_name="cryo", journal_format=journal)
getLogger().warning("compressor pressure high")
shutdown_logging()
"""


def _environment(**wanted: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.pop("JOURNAL_STREAM", None)
    return {**env, **wanted}


def _read_until_closed(fd: int, timeout: float = 30.0) -> str:
    """Everything written to a pty or pipe until the writer closes it."""
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # a pty master reads EIO once the terminal side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def run_logging(
    terminal: bool, config: str | None = None, journal: bool | None = None, **env: str
) -> str:
    """Run ``configure_logging`` in a child whose stdout is a terminal or a pipe; its line."""
    reader, writer = pty.openpty() if terminal else os.pipe()
    environment = _environment(**env)
    if env.get("JOURNAL_STREAM") == "this pipe":
        info = os.fstat(writer)
        environment["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino}"
    flag = {True: "yes", False: "no", None: "-"}[journal]
    try:
        with subprocess.Popen(
            [sys.executable, "-c", CHILD, config or "-", flag], stdout=writer, env=environment
        ) as child:
            os.close(writer)
            writer = -1
            output = _read_until_closed(reader)
            assert child.wait(timeout=30) == 0
    finally:
        if writer >= 0:
            os.close(writer)
        os.close(reader)
    # configure_logging's own INFO lines come first: the application's line is the one.
    (line,) = [line for line in output.splitlines() if "compressor pressure high" in line]
    return line


def test_terminal_is_coloured_by_default() -> None:
    output = run_logging(terminal=True)
    assert "\x1b[33mWARNING\x1b[0m" in output


def test_pipe_gets_no_colour_codes() -> None:
    output = run_logging(terminal=False)
    assert not COLOUR.search(output)
    assert output.startswith("WARNING ")


def test_force_color_colours_a_pipe() -> None:
    assert "\x1b[33mWARNING\x1b[0m" in run_logging(terminal=False, FORCE_COLOR="1")


def test_no_color_wins_on_a_terminal() -> None:
    assert not COLOUR.search(run_logging(terminal=True, NO_COLOR="1"))


def test_no_color_wins_over_force_color_and_the_file(ini: Any) -> None:
    path = ini("[ConsoleLogger]\nuse_coloured_output = 1\n")
    assert not COLOUR.search(run_logging(False, path, FORCE_COLOR="1", NO_COLOR="1"))


def test_an_old_file_asking_for_colour_keeps_its_look_in_a_pipe(ini: Any) -> None:
    path = ini("[ConsoleLogger]\nactive = 1\nlog_level = DEBUG\nuse_coloured_output = 1\n")
    assert "\x1b[33mWARNING\x1b[0m" in run_logging(terminal=False, config=path)


def test_a_file_saying_no_colour_is_plain_on_a_terminal(ini: Any) -> None:
    path = ini("[ConsoleLogger]\nuse_coloured_output = 0\n")
    assert not COLOUR.search(run_logging(terminal=True, config=path))


def test_a_file_without_the_option_follows_the_terminal(ini: Any) -> None:
    path = ini("[ConsoleLogger]\nlog_level = INFO\n")
    assert COLOUR.search(run_logging(terminal=True, config=path))
    assert not COLOUR.search(run_logging(terminal=False, config=path))


def test_journal_format_drops_timestamp_and_colour_under_systemd(ini: Any) -> None:
    # The 0.4 file asks for colour; in the journal the journal's own layout wins.
    path = ini("[ConsoleLogger]\nuse_coloured_output = 1\njournal_format = 1\n")
    output = run_logging(terminal=False, config=path, JOURNAL_STREAM="this pipe")
    assert not COLOUR.search(output)
    assert not TIMESTAMP.search(output)
    # <4>: the syslog priority of a warning, which journald reads from the line.
    assert output.startswith("<4>WARNING   cryo ")


def test_journal_format_argument_overrides_the_file() -> None:
    output = run_logging(terminal=False, journal=True, JOURNAL_STREAM="this pipe")
    assert output.startswith("<4>WARNING")
    output = run_logging(terminal=False, journal=False, JOURNAL_STREAM="this pipe")
    assert TIMESTAMP.search(output)


def test_journal_format_only_applies_to_the_journal_stream() -> None:
    # JOURNAL_STREAM names another file (stdout was redirected): the usual layout.
    output = run_logging(terminal=False, journal=True, JOURNAL_STREAM="1:2")
    assert TIMESTAMP.search(output)
    assert not output.startswith("<")


def test_listen_console_follows_the_terminal(tmp_path: Path) -> None:
    from lab_utils.custom_logging import NonPickledSocketHandler
    from lab_utils.custom_logging.alarm import alarm_formatter

    def alarm_line(terminal: bool) -> str:
        reader, writer = pty.openpty() if terminal else os.pipe()
        env = _environment(PYTHONUNBUFFERED="1")
        with subprocess.Popen(
            [sys.executable, "-m", "lab_utils.custom_logging", "listen", "--port", "0"],
            stdout=writer, stderr=subprocess.DEVNULL, env=env,
        ) as proc:  # fmt: skip
            os.close(writer)
            try:
                banner = _read_line(reader)
                port = int(re.search(r":(\d+)\s*$", banner)[1])  # type: ignore[index]
                handler = NonPickledSocketHandler("127.0.0.1", port)
                handler.setFormatter(alarm_formatter())
                handler.handle(_record("He level low"))
                handler.close()
                return _read_line(reader)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
                os.close(reader)

    assert "\x1b[31mERROR\x1b[0m" in alarm_line(terminal=True)
    plain = alarm_line(terminal=False)
    assert "He level low" in plain
    assert not COLOUR.search(plain)


def _record(message: str) -> Any:
    import logging

    return logging.makeLogRecord(
        {"name": "cryo", "levelno": 40, "levelname": "ERROR", "msg": message}
    )


def _read_line(fd: int, timeout: float = 30.0) -> str:
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        if ready:
            data += os.read(fd, 1)
    if b"\n" not in data:
        pytest.fail(f"no line within {timeout} s: {data!r}")
    return data.decode("utf-8", "replace")
