"""Mail, Slack and alarm sinks against real local peers; a bad peer never hurts the others."""

from __future__ import annotations

import http.server
import json
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab_utils.custom_logging import (
    NonPickledSocketHandler,
    SlackHandler,
    TlsSMTPHandler,
    configure_logging,
    getLogger,
    shutdown_logging,
)
from lab_utils.custom_logging.formatters import ALARM_FORMAT


def _record(message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": "cryo", "levelno": level, "levelname": logging.getLevelName(level), "msg": message}
    )


def test_mail_starttls_verifies_with_the_lab_ca(smtp_starttls: Any, ca_file: Path) -> None:
    handler = TlsSMTPHandler(
        (smtp_starttls.host, smtp_starttls.port), "daq@lab.test", ["a@lab.test", "b@lab.test"],
        "Cryo alarm", credentials=("daq", "s3cret"), ca_file=str(ca_file), timeout=10,
    )  # fmt: skip
    handler.emit(_record("compressor tripped"))
    handler.close()
    (message,) = smtp_starttls.inbox.messages
    assert message.rcpt_tos == ["a@lab.test", "b@lab.test"]
    text = smtp_starttls.inbox.bodies()[0]
    assert "compressor tripped" in text
    assert "To: a@lab.test, b@lab.test" in text
    assert "Subject: Cryo alarm" in text


def test_mail_implicit_tls(smtp_ssl: Any, ca_file: Path) -> None:
    handler = TlsSMTPHandler(
        (smtp_ssl.host, smtp_ssl.port), "daq@lab.test", "a@lab.test", "Cryo",
        credentials=("daq", "s3cret"),
        security="ssl", ca_file=str(ca_file), timeout=10,
    )  # fmt: skip
    handler.emit(_record("over TLS"))
    handler.close()
    assert "over TLS" in smtp_ssl.inbox.bodies()[0]


def test_mail_refuses_an_unverified_certificate(
    smtp_starttls: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = TlsSMTPHandler(
        (smtp_starttls.host, smtp_starttls.port), "daq@lab.test", "a@lab.test", "Cryo",
        credentials=("daq", "s3cret"), timeout=10,
    )  # fmt: skip
    for n in range(3):
        handler.emit(_record(f"secret {n}"))
    handler.close()
    assert smtp_starttls.inbox.messages == []
    assert handler.courier.dropped == 3
    err = capsys.readouterr().err
    assert err.count("cannot deliver") == 1
    assert "CERTIFICATE_VERIFY_FAILED" in err


def test_mail_rate_limit_sends_a_digest(
    smtp_starttls: Any, ca_file: Path, poll: Callable[..., bool]
) -> None:
    handler = TlsSMTPHandler(
        (smtp_starttls.host, smtp_starttls.port), "daq@lab.test", "a@lab.test", "Flood",
        credentials=("daq", "s3cret"), ca_file=str(ca_file), rate_limit=3, rate_period=1.0,
    )  # fmt: skip
    for n in range(10):
        handler.emit(_record(f"sensor failed {n}"))
    assert poll(lambda: len(smtp_starttls.inbox.messages) >= 4)
    handler.close()
    bodies = smtp_starttls.inbox.bodies()
    assert len(bodies) == 4
    assert all(f"sensor failed {n}" in bodies[n] for n in range(3))
    assert "7 more records were held back" in bodies[3]
    assert "Subject: Flood (digest)" in bodies[3]
    assert "sensor failed 9" in bodies[3]


def test_slack_webhook(slack_endpoint: Any) -> None:
    handler = SlackHandler(webhook_url=f"{slack_endpoint.url}/hook/T000")
    handler.emit(_record("beam on", level=25))
    handler.close()
    assert slack_endpoint.posts == [{"text": "beam on"}]


def test_slack_token_mode(slack_endpoint: Any) -> None:
    handler = SlackHandler(
        token="xoxb-test", channel="cw-beam", username="cw_beam", api_url=slack_endpoint.url
    )
    handler.emit(_record("run finished", level=25))
    handler.close()
    assert slack_endpoint.posts == [
        {"channel": "cw-beam", "text": "run finished", "username": "cw_beam"}
    ]
    assert slack_endpoint.headers[0]["Authorization"] == "Bearer xoxb-test"


def test_slack_500_is_reported_once_and_recovery_too(
    slack_endpoint: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    slack_endpoint.status[0] = 500
    handler = SlackHandler(webhook_url=f"{slack_endpoint.url}/hook/T000")
    for n in range(5):
        handler.emit(_record(f"fail {n}"))
    handler.flush()
    slack_endpoint.status[0] = 200
    handler.emit(_record("back"))
    handler.close()
    err = capsys.readouterr().err
    assert err.count("cannot deliver") == 1
    assert "the webhook answered HTTP 500 Internal Server Error: server error" in err
    assert err.count("delivering again (5 records lost so far)") == 1


def test_alarm_records_arrive_one_per_connection(one_shot_listener: Any) -> None:
    handler = NonPickledSocketHandler("127.0.0.1", one_shot_listener.port)
    handler.setFormatter(logging.Formatter(ALARM_FORMAT, "%Y-%m-%d %H:%M:%S"))
    for n in range(7):
        handler.emit(_record(f"warning {n}", level=logging.WARNING))
    handler.close()
    messages = one_shot_listener.messages
    assert len(messages) == 7
    for n, message in enumerate(messages):
        assert message.startswith("{cryo} --date {")
        assert message.endswith(f"--message {{warning {n}}}")


SINKS = """
[ConsoleLogger]
active = 0

[FileLogger]
active = 1
log_path = {logs}
log_basename = daq
log_extension = .log
log_level = WARNING

[AlarmLogger]
active = 1
host = 127.0.0.1
port = {alarm_port}
log_level = WARNING

[MailHandler]
active = 1
credentials_file = {credentials}
recipients =
    a@lab.test
    b@lab.test
mail_host = 127.0.0.1
port = {mail_port}
sender = daq@lab.test
subject = Lab alarm
log_level = WARNING
ca_file = {ca_file}
timeout = {mail_timeout}
rate_limit = 0

[SlackLogger]
active = 1
webhook_url = {slack_url}/hook/T000
log_level = WARNING
rate_limit = 0
"""


@pytest.mark.parametrize("bad", ["mail down", "mail hangs", "slack 500", "alarm listener gone"])
def test_a_bad_peer_never_costs_the_other_sinks_a_record(
    bad: str,
    ini: Any,
    tmp_path: Path,
    smtp_starttls: Any,
    ca_file: Path,
    credentials_file: Path,
    slack_endpoint: Any,
    one_shot_listener: Any,
    hanging_server: tuple[int, threading.Event],
    closed_port: int,
    poll: Callable[..., bool],
) -> None:
    hang_port, hung = hanging_server
    mail_port = {"mail down": closed_port, "mail hangs": hang_port}.get(bad, smtp_starttls.port)
    alarm_port = closed_port if bad == "alarm listener gone" else one_shot_listener.port
    if bad == "slack 500":
        slack_endpoint.status[0] = 500
    path = ini(SINKS.format(
        logs=tmp_path / "logs", alarm_port=alarm_port, credentials=credentials_file,
        mail_port=mail_port,
        # The mail worker stays stuck for 5 s per record; closing waits that once, at the end.
        ca_file=ca_file, mail_timeout=5, slack_url=slack_endpoint.url,
    ))  # fmt: skip
    configure_logging(path, logger_name="daq")
    count = 12
    for n in range(count):
        getLogger().warning("alarm %d", n)
    if bad == "mail hangs":
        # The mail worker is stuck on a server that never answers; everything else flows.
        assert hung.wait(20)
    expected = [f"alarm {n}" for n in range(count)]

    def file_messages() -> list[str]:
        files = list((tmp_path / "logs").glob("daq_*.log"))
        if not files:
            return []
        lines = files[0].read_text().splitlines()
        return [json.loads(line)["message"] for line in lines if json.loads(line)["name"] == "daq"]

    # Other libraries' warnings travel too (the root logger is configured): count ours.
    def alarms() -> list[str]:
        return [
            m.rsplit("--message {", 1)[1][:-1]
            for m in one_shot_listener.messages
            if m.startswith("{daq}")
        ]

    def mails() -> list[str]:
        return [b for b in smtp_starttls.inbox.bodies() if " daq " in b]

    def slacks() -> list[str]:
        return [
            p["text"].rsplit("   ", 1)[1] for p in slack_endpoint.posts if "   daq   " in p["text"]
        ]

    assert poll(lambda: file_messages() == expected)
    if bad != "alarm listener gone":
        assert poll(lambda: alarms() == expected)
    if bad not in ("mail down", "mail hangs"):
        assert poll(lambda: len(mails()) == count)
    if bad != "slack 500":
        assert poll(lambda: slacks() == expected)
    shutdown_logging()


def test_a_hanging_sink_says_what_it_drops_and_what_it_still_holds(
    hanging_server: tuple[int, threading.Event],
    capsys: pytest.CaptureFixture[str],
    poll: Callable[..., bool],
) -> None:
    port, connected = hanging_server
    handler = SlackHandler(webhook_url=f"http://127.0.0.1:{port}/hook", timeout=1.0)
    handler.start_courier("slack test", capacity=2)
    handler.emit(_record("first"))
    assert connected.wait(20)  # the worker holds "first" and waits for the server
    for n in range(4):
        handler.emit(_record(f"then {n}"))
    handler.close(timeout=0.2)
    err = capsys.readouterr().err
    # Two wait in the queue, two more found it full: said once, counted, not lost unseen.
    assert err.count("slack test: queue full (2 records waiting)") == 1
    (line,) = [line for line in err.splitlines() if "slack test: closed" in line]
    lost = int(re.search(r"(\d+) records not delivered are lost", line)[1])  # type: ignore[index]
    being_sent = int(re.search(r"(\d+) more still being sent", line)[1])  # type: ignore[index]
    # Close gave up: what was queued is dropped, only the attempt under way goes on.
    assert (lost, being_sent) == (4, 1)
    assert "of them 2 still queued when it closed" in line
    courier = handler.courier
    assert poll(lambda: courier.dropped == 5)
    # That attempt fails in silence: the line at close said what it would cost.
    courier.stop()
    assert capsys.readouterr().err == ""


def test_mail_refused_for_one_recipient_is_not_delivered(
    smtp_starttls: Any, ca_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    smtp_starttls.inbox.refused.add("gone@lab.test")
    handler = TlsSMTPHandler(
        (smtp_starttls.host, smtp_starttls.port), "daq@lab.test",
        ["a@lab.test", "gone@lab.test"], "Cryo alarm",
        credentials=("daq", "s3cret"), ca_file=str(ca_file), timeout=10,
    )  # fmt: skip
    handler.emit(_record("compressor tripped"))
    handler.close()
    # The others got it; the record still did not reach everyone it was meant for.
    (message,) = smtp_starttls.inbox.messages
    assert message.rcpt_tos == ["a@lab.test"]
    assert (handler.courier.delivered, handler.courier.dropped) == (0, 1)
    err = capsys.readouterr().err
    assert "cannot deliver: SMTPRecipientsRefused: " in err
    assert "gone@lab.test" in err


def test_a_redirected_slack_post_is_not_delivered(capsys: pytest.CaptureFixture[str]) -> None:
    gets: list[str] = []

    class Moved(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            # The body is never read: the message goes nowhere but into the redirect.
            self.send_response(302)
            self.send_header("Location", "/moved")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            gets.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        handler = SlackHandler(webhook_url=f"http://127.0.0.1:{server.server_address[1]}/hook")
        handler.emit(_record("beam lost"))
        handler.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert gets == []
    assert (handler.courier.delivered, handler.courier.dropped) == (0, 1)
    assert "a redirect to http://127.0.0.1:" in capsys.readouterr().err
