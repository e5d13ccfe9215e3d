"""systemd Type=notify: READY=1 once the daemon listens, STOPPING=1 on the way out.

The tests play systemd's part with a real AF_UNIX datagram socket named in NOTIFY_SOCKET.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab_utils.socket_comm import Client, Server
from lab_utils.socket_comm.systemd import notify


def _received(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_daemon_says_ready_once_listening_and_stopping_on_quit(
    start_daemon: Callable[..., Any], notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    daemon = start_daemon(wait=False, env={"NOTIFY_SOCKET": path})
    ready = _received(sock)
    assert ready["READY"] == "1"
    assert ready["STATUS"] == f"listening on localhost:{daemon.port}"
    # READY=1 was sent after listen(): the daemon answers without any waiting on our side.
    client = Client(host="127.0.0.1", port=daemon.port, timeout=30)
    assert client.send_message("status") == "running"
    assert client.send_message("quit") == "Cryo daemon stopped, bye!"
    assert _received(sock) == {"STOPPING": "1"}
    out, err = daemon.finish()
    assert daemon.proc.returncode == 0, err
    assert "stopped normally" in out


def test_daemon_says_stopping_on_sigterm(
    start_daemon: Callable[..., Any], notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    daemon = start_daemon(wait=False, env={"NOTIFY_SOCKET": path})
    assert _received(sock)["READY"] == "1"
    daemon.proc.terminate()
    assert _received(sock) == {"STOPPING": "1"}
    daemon.finish()
    assert daemon.proc.returncode == 0


def test_abstract_namespace_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"labcomm-test-{os.getpid()}-{id(tmp_path)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(30)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        server = Server(pid_file_name=str(tmp_path / "n.pid"), host="127.0.0.1", port=0)
        with server.start_in_thread():
            assert _received(sock)["READY"] == "1"
        assert _received(sock) == {"STOPPING": "1"}


def test_without_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


def test_an_unreachable_notify_socket_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert notify("READY=1") is False
    assert "Could not notify systemd" in caplog.text
    assert str(tmp_path / "gone") in caplog.text
