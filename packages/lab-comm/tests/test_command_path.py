"""The path of a one-shot request: legacy detection, plain sockets, replies of any size."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab_utils.socket_comm import Server, split_message
from lab_utils.socket_comm.protocol import AUTH_REQUIRED, NOT_UTF8, Protocol
from lab_utils.socket_comm.wire import MAGIC, Verifier

BIG = 8 * 1024 * 1024  # far more than a socket buffer: the reply goes out in pieces


class Lab(Server):
    """Bench daemon of these tests."""

    def __init__(self, pid_file: Path) -> None:
        super().__init__(pid_file_name=str(pid_file), host="127.0.0.1", port=0)
        light = self.sp.add_parser(name="Light", description="switch the light")
        light.add_argument("state", choices=["on", "off"])
        light.set_defaults(func=self.light, which="Light")
        big = self.sp.add_parser(name="big", description="a long reply")
        big.set_defaults(func=self.big, which="big")

    def light(self) -> None:
        self.reply = f"light {self.namespace.state}"

    def big(self) -> None:
        self.reply = "0123456789abcdef" * (BIG // 16)


def _one_shot(port: int, data: bytes) -> bytes:
    """Send ``data`` like a 0.4 client (no terminator) and read the reply to the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    server = Lab(tmp_path / "lab.pid")
    with server.start_in_thread():
        yield server


def _protocol(verifier: Verifier | None = None) -> tuple[Protocol, list[str]]:
    answered: list[str] = []

    def answer(text: str) -> str:
        answered.append(text)
        return f"got {text}"

    logger = logging.getLogger("test_command_path")
    return Protocol(answer, lambda: False, logger, verifier, 1024), answered


def test_one_shot_answers_a_legacy_message_at_once() -> None:
    protocol, answered = _protocol()
    assert protocol.one_shot(b"status --gauge 3") == b"got status --gauge 3"
    assert protocol.one_shot("débit 5".encode()) == "got débit 5".encode()
    assert answered == ["status --gauge 3", "débit 5"]


@pytest.mark.parametrize(
    "data",
    [MAGIC + b"4\nping", MAGIC, MAGIC[:1], MAGIC[:7], b""],
    ids=["header", "magic", "first letter", "part of the magic", "empty"],
)
def test_one_shot_leaves_what_may_be_a_frame_to_the_framed_path(data: bytes) -> None:
    protocol, answered = _protocol()
    assert protocol.one_shot(data) is None
    assert answered == []


def test_one_shot_answers_legacy_messages_that_start_like_the_header() -> None:
    protocol, answered = _protocol()
    assert protocol.one_shot(b"Light on") == b"got Light on"
    assert protocol.one_shot(b"LABCOMM/2") == b"got LABCOMM/2"
    assert answered == ["Light on", "LABCOMM/2"]


def test_one_shot_refuses_what_is_not_utf8_or_not_authenticated() -> None:
    protocol, answered = _protocol()
    assert protocol.one_shot(b"\xff\xfe status") == NOT_UTF8.encode()
    guarded, _ = _protocol(Verifier(b"s3cret"))
    assert guarded.one_shot(b"status") == AUTH_REQUIRED.encode()
    assert guarded.one_shot(b"Light on") == AUTH_REQUIRED.encode()
    assert answered == []


def test_a_command_starting_with_the_header_letter_is_answered(lab: Lab) -> None:
    assert _one_shot(lab.address or 0, b"Light on") == b"light on"
    assert b"invalid choice" in _one_shot(lab.address or 0, b"Light dim")


def test_a_long_legacy_reply_arrives_whole(lab: Lab) -> None:
    reply = _one_shot(lab.address or 0, b"big")
    assert len(reply) == BIG
    assert reply == b"0123456789abcdef" * (BIG // 16)


def test_served_under_a_default_socket_timeout(tmp_path: Path) -> None:
    # A default timeout makes every new socket wait on each call; the daemon must not.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20.0)
    try:
        server = Lab(tmp_path / "timeout.pid")
        with server.start_in_thread():
            assert _one_shot(server.address or 0, b"Light off") == b"light off"
            assert len(_one_shot(server.address or 0, b"big")) == BIG
    finally:
        socket.setdefaulttimeout(previous)


def _open_descriptors() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_every_accepted_connection_is_closed(lab: Lab) -> None:
    port = lab.address or 0
    _one_shot(port, b"Light on")  # the daemon's own descriptors are all open by now
    before = _open_descriptors()
    replies: list[bytes] = []

    def client(count: int) -> None:
        for _ in range(count):
            replies.append(_one_shot(port, b"Light on"))

    threads = [threading.Thread(target=client, args=(50,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert replies == [b"light on"] * 400
    # Each client socket is closed by its `with`; a leaked accepted socket would remain.
    assert _open_descriptors() == before


def test_a_burst_of_queued_connections_is_answered_then_a_lone_client(lab: Lab) -> None:
    # A hundred connections queue up with their messages before any reply is read (the
    # daemon accepts in batches), then one client at a time (it accepts one per wake-up).
    port = lab.address or 0
    burst = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(100)]
    try:
        for n, sock in enumerate(burst):
            sock.sendall(b"Light on" if n % 2 else b"Light off")
        for n, sock in enumerate(burst):
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            assert b"".join(chunks) == (b"light on" if n % 2 else b"light off")
    finally:
        for sock in burst:
            sock.close()
    assert [_one_shot(port, b"Light on") for _ in range(50)] == [b"light on"] * 50


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (" status  --gauge 3", ["status", "--gauge", "3"]),
        ("status\t--gauge 3", ["status\t--gauge", "3"]),
        ("status --gauge 3", ["status", "--gauge", "3"]),
        ("   ", []),
    ],
    ids=["spaces around", "a tab is no separator", "single spaces", "only spaces"],
)
def test_split_message_without_groups(message: str, words: list[str]) -> None:
    assert split_message(message) == words


def test_execute_keeps_the_04_bookkeeping(tmp_path: Path) -> None:
    server = Lab(tmp_path / "direct.pid")
    try:
        assert server.execute("  Light on  \n") == "light on"
        checks: dict[str, Any] = {
            "message": server.message,
            "reply": server.reply,
            "state": server.namespace.state,
            "which": server.namespace.which,
            "served": server.served,
        }
        assert checks == {
            "message": "  Light on",
            "reply": "light on",
            "state": "on",
            "which": "Light",
            "served": 1,
        }
        assert server.execute("quit") == "Goodbye!"
        assert server.quit_flag is True
    finally:
        server.close()
