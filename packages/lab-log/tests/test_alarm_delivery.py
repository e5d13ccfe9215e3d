"""An alarm counts as delivered only when the server answered it, as socket_comm servers do."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from lab_utils.custom_logging import NonPickledSocketHandler
from lab_utils.custom_logging.alarm import alarm_formatter


def _record(message: str) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": "cryo", "levelno": logging.WARNING, "levelname": "WARNING", "msg": message}
    )


Answer = Callable[[socket.socket, threading.Event], None]
Serve = Callable[[Answer], AbstractContextManager[int]]


def _old_server(reply: bytes) -> Callable[[socket.socket, threading.Event], None]:
    """Answer as a 0.4 socket_comm server: one recv(1024), the reply, then the close."""

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(1024)
        conn.sendall(reply)

    return answer


def _handler(port: int, timeout: float = 5.0) -> NonPickledSocketHandler:
    handler = NonPickledSocketHandler("127.0.0.1", port, timeout=timeout)
    handler.setFormatter(alarm_formatter())
    return handler


def test_a_server_that_never_answers_is_a_failed_delivery(
    hanging_server: tuple[int, threading.Event], capsys: pytest.CaptureFixture[str]
) -> None:
    port, _ = hanging_server
    handler = _handler(port, timeout=0.5)
    for n in range(2):
        handler.emit(_record(f"cryostat warm {n}"))
    handler.flush(timeout=30)
    assert (handler.courier.delivered, handler.courier.dropped) == (0, 2)
    err = capsys.readouterr().err
    assert err.count("cannot deliver: TimeoutError: the alarm server did not answer") == 1
    handler.close()


def test_an_answer_and_the_close_deliver(
    answering_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    with answering_server(_old_server(b"OK")) as port:
        handler = _handler(port)
        handler.emit(_record("pressure high"))
        handler.close()
    assert (handler.courier.delivered, handler.courier.dropped) == (1, 0)
    assert capsys.readouterr().err == ""


def test_the_alarm_listener_acknowledges_with_its_close(
    alarm_listener: Any, poll: Callable[..., bool]
) -> None:
    handler = _handler(alarm_listener.port)
    handler.emit(_record("helium low"))
    handler.close()
    assert handler.courier.delivered == 1
    assert poll(lambda: alarm_listener.messages() == ["helium low"])


@pytest.mark.parametrize(
    "reply",
    [
        b"Error! argument command: invalid choice: 'cryo'\n\nDAEMON HELP\n",
        b"Unknown exception! Check daemon log!\nStateError: busy",
        b"Daemon error, maybe you forgot to set the 'which' argument?\n",
    ],
)
def test_an_error_reply_is_a_refused_delivery(
    reply: bytes, answering_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    with answering_server(_old_server(reply)) as port:
        handler = _handler(port)
        handler.emit(_record("pressure high"))
        handler.close()
    assert (handler.courier.delivered, handler.courier.dropped) == (0, 1)
    err = capsys.readouterr().err
    first_line = reply.decode().splitlines()[0]
    assert f"AlarmRefusedError: the alarm server refused the record: {first_line}" in err


def test_a_reset_instead_of_an_answer_is_a_failed_delivery(
    answering_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    # A 0.4 server reads 1024 bytes of a longer record and closes on the rest: a reset.
    with answering_server(_old_server(b"Error! cut")) as port:
        handler = _handler(port)
        handler.emit(_record("traceback " + "x" * 8000))
        handler.close()
    assert (handler.courier.delivered, handler.courier.dropped) == (0, 1)
    assert "cannot deliver: " in capsys.readouterr().err


def test_a_server_trickling_bytes_cannot_stretch_an_attempt(
    answering_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    def trickle(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(65536)
        # A byte now and then, never the close: each read is quick, the answer never ends.
        while not stop.wait(0.1):
            try:
                conn.sendall(b".")
            except OSError:
                return

    with answering_server(trickle) as port:
        handler = _handler(port, timeout=1.0)
        handler.emit(_record("vacuum lost"))
        handler.flush(timeout=30)
        assert (handler.courier.delivered, handler.courier.dropped) == (0, 1)
        handler.close()
    assert "TimeoutError: the alarm server did not answer within 1 s" in capsys.readouterr().err
