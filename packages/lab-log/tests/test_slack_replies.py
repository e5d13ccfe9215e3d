"""What Slack answers decides whether a message counts as delivered, against a local server."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lab_utils.custom_logging import ConfigError, SlackHandler

WEBHOOK_PATH = "/services/T0LAB/B0CRYO/s3cretW3bhookPart"
TOKEN = "xoxb-s3cret-b0t-t0ken"


@dataclass
class Replies:
    """A loopback HTTP server answering every POST with ``status`` and ``body``."""

    url: str
    status: int = 200
    body: bytes = b"ok"
    location: str | None = None
    echo: bool = False
    """Append the request's path and Authorization header to the body, as a bad proxy might."""
    posts: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def replies() -> Iterator[Replies]:
    """The server; a test sets what it answers before sending."""
    state = Replies("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            state.posts.append(json.loads(self.rfile.read(length)))
            body = state.body
            if state.echo:
                body += f" {self.path} {self.headers.get('Authorization')}".encode()
            self.send_response(state.status)
            if state.location is not None:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _send(handler: SlackHandler, message: str = "compressor tripped") -> tuple[int, int]:
    handler.emit(
        logging.makeLogRecord(
            {"name": "cryo", "levelno": logging.ERROR, "levelname": "ERROR", "msg": message}
        )
    )
    handler.close()
    return handler.courier.delivered, handler.courier.dropped


def _webhook(replies: Replies) -> SlackHandler:
    return SlackHandler(webhook_url=f"{replies.url}{WEBHOOK_PATH}", timeout=5)


def _api(replies: Replies) -> SlackHandler:
    return SlackHandler(token=TOKEN, channel="cw-beam", api_url=replies.url, timeout=5)


@pytest.mark.parametrize("body", [b"ok", b"ok\n", b"  ok \r\n"])
def test_a_webhook_answering_ok_is_delivered(
    replies: Replies, body: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    replies.body = body
    assert _send(_webhook(replies)) == (1, 0)
    assert replies.posts == [{"text": "compressor tripped"}]
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (200, b"invalid_payload", "invalid_payload"),
        (200, b"", "an empty reply"),
        (200, b"<html><body>\n  Proxy says hello\n</body></html>", "<html><body> Proxy says"),
        (204, b"", "an empty reply"),
    ],
)
def test_a_webhook_2xx_without_ok_is_a_failed_delivery(
    replies: Replies, status: int, body: bytes, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    replies.status, replies.body = status, body
    assert _send(_webhook(replies)) == (0, 1)
    err = capsys.readouterr().err
    assert err.count("cannot deliver: SlackError: the webhook answered HTTP 2xx without") == 1
    assert said in err


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "invalid_payload"),
        (400, "no_text"),
        (403, "action_prohibited"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
        (500, "rollup_error"),
    ],
)
def test_a_webhook_error_reply_is_reported_with_slacks_text(
    replies: Replies, status: int, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    replies.status, replies.body = status, error.encode()
    assert _send(_webhook(replies)) == (0, 1)
    err = capsys.readouterr().err
    assert f"cannot deliver: SlackError: the webhook answered HTTP {status} " in err
    assert f": {error}; dropping records until it recovers" in err


@pytest.mark.parametrize(
    "body", [{"ok": True}, {"ok": True, "warning": "missing_charset", "ts": "1.2"}]
)
def test_the_api_answering_ok_true_is_delivered(
    replies: Replies, body: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    replies.body = json.dumps(body).encode()
    assert _send(_api(replies)) == (1, 0)
    assert capsys.readouterr().err == ""


API_REFUSALS = [
    (200, {"ok": False, "error": "channel_not_found"}, "refused the message: channel_not_found"),
    (200, {"ok": False, "error": "not_in_channel"}, "refused the message: not_in_channel"),
    (200, {"ok": False, "error": "invalid_auth"}, "refused the message: invalid_auth"),
    # Only JSON true is a yes: a proxy's string "false" is not.
    (200, {"ok": "false", "error": "is_archived"}, "refused the message: is_archived"),
    (200, "ok", "refused the message: ok"),
    (
        429,
        {"ok": False, "error": "ratelimited"},
        "answered HTTP 429 Too Many Requests: ratelimited",
    ),
    (
        503,
        {"ok": False, "error": "service_unavailable"},
        "answered HTTP 503 Service Unavailable: service_unavailable",
    ),
]


@pytest.mark.parametrize(("status", "body", "said"), API_REFUSALS)
def test_an_api_reply_saying_not_ok_is_a_failed_delivery_with_slacks_error(
    replies: Replies, status: int, body: Any, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    replies.status = status
    replies.body = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    assert _send(_api(replies)) == (0, 1)
    err = capsys.readouterr().err
    assert err.count(f"cannot deliver: SlackError: chat.postMessage {said};") == 1
    # Slack's error code, not the raw JSON.
    assert '"ok"' not in err


def test_a_refused_message_is_counted_and_the_next_accepted_one_recovers(
    replies: Replies, capsys: pytest.CaptureFixture[str]
) -> None:
    replies.body = json.dumps({"ok": False, "error": "channel_not_found"}).encode()
    handler = _api(replies)
    for n in range(3):
        handler.emit(
            logging.makeLogRecord({"msg": f"lost {n}", "levelno": 40, "levelname": "ERROR"})
        )
    handler.flush()
    replies.body = b'{"ok": true}'
    assert _send(handler, "back") == (1, 3)
    err = capsys.readouterr().err
    # Said once when it began; the closing line names it again as the last failure.
    assert err.count("cannot deliver: SlackError: chat.postMessage refused the message:") == 1
    assert "channel_not_found; dropping records until it recovers" in err
    assert err.count("delivering again (3 records lost so far)") == 1


def test_no_report_names_the_token_or_the_webhook_address(
    replies: Replies, capsys: pytest.CaptureFixture[str]
) -> None:
    # A proxy echoing what it got: the path and the bearer token.
    replies.status, replies.body, replies.echo = 400, b"invalid_auth", True
    _send(_webhook(replies))
    _send(_api(replies))
    replies.status, replies.body = 200, b'{"ok": false, "error": "invalid_auth"}'
    _send(_api(replies))
    # A redirect to https at the same path, what a webhook configured as http:// gets.
    replies.echo, replies.status, replies.body = False, 301, b""
    replies.location = f"https://127.0.0.1{WEBHOOK_PATH}"
    _send(_webhook(replies))
    err = capsys.readouterr().err
    assert "a redirect to https://127.0.0.1<webhook path>" in err
    assert "<token>" in err
    said = [line for line in err.splitlines() if "cannot deliver" in line]
    assert len(said) == 4
    assert sum("invalid_auth" in line for line in said) == 3
    for secret in (TOKEN, "s3cretW3bhookPart", "B0CRYO"):
        assert secret not in err


@pytest.mark.parametrize(
    "address",
    ["hooks.slack.com/services/T0LAB/B0CRYO/s3cretW3bhookPart",
     "https://hooks.slack.com/services/T0LAB/B0CRYO/s3cretW3bhookPart\n",
     "https://hooks.slack.com/services/T0LAB/B0CRYO/s3cret W3bhookPart"],
)  # fmt: skip
def test_a_bad_webhook_address_is_a_config_error_that_does_not_show_it(address: str) -> None:
    with pytest.raises(ConfigError, match=r"^webhook_url ") as raised:
        SlackHandler(webhook_url=address)
    assert "s3cret" not in str(raised.value)
