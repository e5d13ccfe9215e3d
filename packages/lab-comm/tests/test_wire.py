"""The wire: concurrency, large and garbage messages, persistent mode, authentication."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

import pytest

from lab_utils.custom_logging import NonPickledSocketHandler
from lab_utils.custom_logging.formatters import ALARM_FORMAT, DATE_FORMAT
from lab_utils.socket_comm import Client, Server, split_message
from lab_utils.socket_comm.parser import MessageError
from lab_utils.socket_comm.wire import MAGIC, Verifier, frame, sign


def _raw(port: int, data: bytes, half_close: bool = False) -> bytes:
    """Send raw bytes, return everything the daemon sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_two_hundred_idle_connections_do_not_block_a_client(daemon: Any) -> None:
    idle = [socket.create_connection(("127.0.0.1", daemon.port), timeout=30) for _ in range(200)]
    try:
        assert (
            Client(host="127.0.0.1", port=daemon.port, timeout=20).send_message("status")
            == "running"
        )
    finally:
        for sock in idle:
            sock.close()


def test_sixty_four_concurrent_clients_each_get_their_reply(daemon: Any) -> None:
    replies: dict[int, str] = {}

    def ask(n: int) -> None:
        for k in range(5):
            replies[n * 10 + k] = Client(host="127.0.0.1", port=daemon.port).send_message(
                f"echo --text c{n}-{k}"
            )

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert replies == {n * 10 + k: f"c{n}-{k}" for n in range(64) for k in range(5)}


def test_one_mebibyte_of_unicode_both_ways(daemon: Any) -> None:
    text = ("température ≈ 4.2 K ✓ " * 50_000)[: 1 << 20].strip()
    reply = Client(host="127.0.0.1", port=daemon.port).send_message(f"echo --text {{{text}}}")
    assert reply == text
    assert len(reply.encode()) > 1 << 20


def test_persistent_connection_many_commands(daemon: Any) -> None:
    with Client(host="127.0.0.1", port=daemon.port, persistent=True) as client:
        assert [client.send_message(f"echo --text n{n}") for n in range(100)] == [
            f"n{n}" for n in range(100)
        ]


def test_legacy_exchange_like_an_old_client(daemon: Any) -> None:
    # One unterminated message, no half-close: the reply must come anyway.
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=30) as sock:
        sock.sendall(b"status")
        assert sock.recv(1024) == b"running"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xfe\x00garbage", b"Error! The message is not valid UTF-8"),
        (b"status }", b"Error! unbalanced '}' in the message"),
        (MAGIC + b"99999999999\n", b"exceeds the limit"),
        (MAGIC + b"12 x y z\n", b"malformed frame header"),
        (MAGIC + b"not-a-number\n", b"malformed frame header"),
    ],
    ids=["invalid utf-8", "stray brace", "oversize", "bad header", "bad length"],
)
def test_garbage_gets_a_clear_error_and_the_daemon_lives(
    daemon: Any, data: bytes, expected: bytes
) -> None:
    assert expected in _raw(daemon.port, data)
    assert Client(host="127.0.0.1", port=daemon.port).send_message("status") == "running"


def test_random_bytes_and_empty_connections_never_hang(daemon: Any) -> None:
    for _ in range(20):
        _raw(daemon.port, os.urandom(300), half_close=True)
    _raw(daemon.port, b"", half_close=True)
    assert Client(host="127.0.0.1", port=daemon.port).send_message("status") == "running"


def test_secret_required_and_never_sent(start_daemon: Any) -> None:
    daemon = start_daemon(secret="pump-room-7")
    stranger = Client(host="127.0.0.1", port=daemon.port)
    assert stranger.send_message("quit").startswith("Error! Authentication required")
    assert _raw(daemon.port, b"quit").startswith(b"Error! Authentication required")
    wrong = Client(host="127.0.0.1", port=daemon.port, secret="guess")
    assert "wrong secret" in wrong.send_message("quit")
    assert daemon.proc.poll() is None
    friend = Client(host="127.0.0.1", port=daemon.port, secret="pump-room-7")
    assert friend.send_message("status") == "running"
    assert b"pump-room-7" not in frame(b"quit", sign(b"pump-room-7", b"quit"))
    assert friend.send_message("quit") == "Cryo daemon stopped, bye!"
    daemon.finish()


def test_replayed_or_stale_authentication_is_refused() -> None:
    verifier = Verifier(b"s")
    auth = sign(b"s", b"quit", now=1000.0)
    assert verifier.check(auth, b"quit", now=1001.0) is None
    assert verifier.check(auth, b"quit", now=1002.0) == "replayed message"
    assert verifier.check(sign(b"s", b"quit", now=1000.0), b"quit", now=2000.0) is not None
    assert verifier.check(auth, b"status", now=1001.0) == "wrong secret"


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("dev --config {/a b/c.ini}", ["dev", "--config", "/a b/c.ini"]),
        ("set --x {}", ["set", "--x", ""]),
        ("say {careful {braces} here}", ["say", "careful {braces} here"]),
        ("a  b \n", ["a", "b"]),
        ("msg {two  spaces}", ["msg", "two  spaces"]),
    ],
)
def test_split_message(message: str, words: list[str]) -> None:
    assert split_message(message) == words


def test_unclosed_group_is_an_error() -> None:
    with pytest.raises(MessageError, match="not closed"):
        split_message("say {oops")


def test_alarm_records_from_lab_log_reach_a_server(tmp_path: Any) -> None:
    received: list[tuple[str, str, str]] = []

    class AlarmServer(Server):
        def __init__(self) -> None:
            super().__init__(pid_file_name=str(tmp_path / "a.pid"), host="127.0.0.1", port=0)
            alarm = self.sp.add_parser(name="cryo", description="alarm records of the cryo app")
            for option in ("--date", "--level", "--app", "--module", "--function", "--message"):
                alarm.add_argument(option)
            alarm.set_defaults(func=self.alarm, which="cryo")

        def alarm(self) -> None:
            ns = self.namespace
            received.append((ns.level, ns.function, ns.message))
            self.reply = "logged"

    server = AlarmServer()
    running = server.start_in_thread()
    handler = NonPickledSocketHandler("127.0.0.1", server.address)
    handler.setFormatter(logging.Formatter(ALARM_FORMAT, DATE_FORMAT))
    logger = logging.getLogger("cryo")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for n in range(7):
            logger.warning("pressure {high}  at gauge %d", n)
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
        running.stop()
    assert received == [
        (
            "WARNING",
            "test_alarm_records_from_lab_log_reach_a_server",
            f"pressure {{high}}  at gauge {n}",
        )
        for n in range(7)
    ]


def test_connection_limit_and_idle_timeout(tmp_path: Any) -> None:
    class Limited(Server):
        max_connections = 2
        connection_timeout = 0.5

    server = Limited(pid_file_name=str(tmp_path / "l.pid"), host="127.0.0.1", port=0)
    running = server.start_in_thread()
    idle = [socket.create_connection(("127.0.0.1", server.address), timeout=30) for _ in range(2)]
    try:
        with socket.create_connection(("127.0.0.1", server.address), timeout=30) as third:
            assert third.recv(1) == b""  # refused: over the limit
        for sock in idle:
            assert sock.recv(1) == b""  # closed by the idle timeout
        assert Client(host="127.0.0.1", port=server.address).send_message("quit") == "Goodbye!"
    finally:
        for sock in idle:
            sock.close()
        running.stop()
