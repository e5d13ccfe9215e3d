"""Closing: one timeout in all, network sinks side by side, one line each for what is lost."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from lab_utils.custom_logging import SlackHandler, TlsSMTPHandler
from lab_utils.custom_logging.delivery import Dispatcher


def _record(message: str) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": "cryo", "levelno": logging.ERROR, "levelname": "ERROR", "msg": message}
    )


def _closed_lines(err: str, sink: str) -> list[str]:
    return [line for line in err.splitlines() if f": {sink}: closed" in line]


def _lost_and_being_sent(line: str) -> tuple[int, int]:
    lost = re.search(r"(\d+) records not delivered are lost", line)
    being_sent = re.search(r"(\d+) more still being sent", line)
    return (int(lost[1]) if lost else 0, int(being_sent[1]) if being_sent else 0)


def test_hanging_sinks_close_side_by_side_each_within_its_own_timeout(
    hanging_server: tuple[int, threading.Event],
    capsys: pytest.CaptureFixture[str],
    poll: Callable[..., bool],
) -> None:
    port, connected = hanging_server
    mail = TlsSMTPHandler(
        ("127.0.0.1", port), "daq@lab.test", "a@lab.test", "Cryo", timeout=2, security="none"
    )
    slack = SlackHandler(webhook_url=f"http://127.0.0.1:{port}/hook", timeout=3)
    dispatcher = Dispatcher(queued=[mail, slack])
    dispatcher.start()
    for n in range(3):
        dispatcher.handle(_record(f"compressor {n}"))
    assert connected.wait(20)
    closer = threading.Thread(target=dispatcher.close)
    closer.start()
    # Slack is closed second; by then the mail sink, closed first, must still be
    # waiting for its server: its one line comes at its own deadline, not before.
    assert poll(lambda: slack.courier.closed)
    assert _closed_lines(capsys.readouterr().err, "mail via 127.0.0.1") == []
    assert poll(lambda: not closer.is_alive())
    err = capsys.readouterr().err
    (mail_line,) = _closed_lines(err, f"mail via 127.0.0.1:{port}")
    (slack_line,) = _closed_lines(err, "Slack webhook")
    assert "did not finish within its timeout (2 s)" in mail_line
    assert "did not finish within its timeout (3 s)" in slack_line
    for line in (mail_line, slack_line):
        # Each of the three records is accounted for: lost, or still in an attempt.
        assert sum(_lost_and_being_sent(line)) == 3
        assert " ERROR; first: ERROR cryo: compressor " in line
    # The abandoned workers end their attempts in silence: the line said it all.
    assert poll(lambda: mail.courier.pending == 0 and slack.courier.pending == 0)
    assert mail.courier.dropped == slack.courier.dropped == 3
    mail.close()
    dispatcher.close()
    assert capsys.readouterr().err == ""


def test_flush_then_close_on_a_hanging_sink_says_it_once(
    hanging_server: tuple[int, threading.Event], capsys: pytest.CaptureFixture[str]
) -> None:
    # logging.shutdown calls flush(), then close(), on a handler built by hand.
    port, connected = hanging_server
    slack = SlackHandler(webhook_url=f"http://127.0.0.1:{port}/hook", timeout=1)
    for n in range(2):
        slack.emit(_record(f"valve {n}"))
    assert connected.wait(20)
    slack.flush()
    slack.close()
    slack.close()
    (line,) = _closed_lines(capsys.readouterr().err, "Slack webhook")
    assert sum(_lost_and_being_sent(line)) == 2


def test_a_sink_that_failed_says_its_losses_once_at_close(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    slack = SlackHandler(webhook_url=f"http://127.0.0.1:{closed_port}/hook", timeout=5)
    for n in range(4):
        slack.emit(_record(f"pump {n}"))
    slack.close()
    err = capsys.readouterr().err
    assert err.count("cannot deliver") == 1
    (line,) = _closed_lines(err, "Slack webhook")
    assert "Connection refused" in line
    assert _lost_and_being_sent(line) == (4, 0)
    assert "first: ERROR cryo: pump 0; last: ERROR cryo: pump 3" in line


SCRIPT_AT_EXIT = """
import logging, sys
from lab_utils.custom_logging import SlackHandler
port = int(sys.argv[1])
log = logging.getLogger("cryo")
for timeout in (1, 2):
    log.addHandler(SlackHandler(webhook_url=f"http://127.0.0.1:{port}/hook/{timeout}",
                                timeout=timeout))
log.error("helium low")
log.error("helium very low")
"""


def test_sinks_built_by_hand_close_at_exit_side_by_side_one_line_each(
    hanging_server: tuple[int, threading.Event],
) -> None:
    port, _ = hanging_server
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT_AT_EXIT, str(port)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = _closed_lines(done.stderr, "Slack webhook")
    assert len(lines) == 2, done.stderr
    assert sorted(re.search(r"timeout \((\d) s\)", line)[1] for line in lines) == ["1", "2"]  # type: ignore[index]
    assert all(sum(_lost_and_being_sent(line)) == 2 for line in lines)
    assert "Traceback" not in done.stderr


SCRIPT_LAST_WORDS = """
import sys
from lab_utils.custom_logging import configure_logging, getLogger
configure_logging(sys.argv[1], logger_name="daq")
getLogger().warning("last words")
"""


def test_a_record_logged_just_before_exit_reaches_the_alarm_listener(
    ini: Any, alarm_listener: Any, poll: Callable[..., bool]
) -> None:
    path = ini(
        "[ConsoleLogger]\nactive = 0\n"
        f"[AlarmLogger]\nactive = 1\nhost = 127.0.0.1\nport = {alarm_listener.port}\n"
        "log_level = WARNING\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT_LAST_WORDS, path],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert poll(lambda: "last words" in alarm_listener.messages())
    assert "Logging error" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_console_stuck_on_a_full_pipe_does_not_hold_close(
    capsys: pytest.CaptureFixture[str], poll: Callable[..., bool]
) -> None:
    read_end, write_end = os.pipe()
    stuck = open(write_end, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    console = logging.StreamHandler(stuck)
    dispatcher = Dispatcher(local=[console])
    dispatcher.start()
    # Nobody reads the pipe: after about 64 KiB the console's write blocks.
    for n in range(20):
        dispatcher.handle(_record(f"{n} " + "x" * 10_000))
    closer = threading.Thread(target=dispatcher.close, kwargs={"timeout": 0.5})
    closer.start()
    drained = threading.Event()
    try:
        assert poll(lambda: not closer.is_alive())
        err = capsys.readouterr().err
        assert err.count("console and file: closed while their thread is stuck writing") == 1
        lost = int(re.search(r"stuck writing; (\d+) records", err)[1])  # type: ignore[index]
        assert 1 <= lost < 20
    finally:
        # Let the stuck thread finish and the pipe close, whatever the outcome.
        def drain() -> None:
            with open(read_end, "rb") as reader:
                while reader.read(65536):
                    pass
            drained.set()

        threading.Thread(target=drain, daemon=True).start()
        closer.join(20)
        listener = dispatcher._listener
        assert poll(lambda: listener._thread is None or not listener._thread.is_alive())
        stuck.close()
        assert drained.wait(20)
