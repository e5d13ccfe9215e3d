"""A daemon with no open connection sleeps in accept(); stops, slow clients and signals wake it.

The daemons here check their stop condition only once an hour (``socket_timeout``), so a
stop that did not wake the blocking accept itself would leave them running past every
deadline of the tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab_utils.socket_comm import Client, Server, command

HERE = Path(__file__).parent


class Idle(Server):
    """Daemon that never wakes up by itself."""

    socket_timeout = 3600.0

    @command
    def status(self) -> str:
        """Show the state."""
        return "idle"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def _one_shot(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(
    ("host", "connect_to"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),
        pytest.param(
            "::1",
            "::1",
            marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback"),
        ),
    ],
    ids=["loopback", "every address", "IPv6 loopback"],
)
def test_stop_from_another_thread_wakes_an_idle_daemon(
    tmp_path: Path, host: str, connect_to: str
) -> None:
    server = Idle(pid_file_name=str(tmp_path / "idle.pid"), host=host, port=0)
    running = server.start_in_thread()
    try:
        assert _one_shot(running.address, b"status", connect_to) == b"idle"
    finally:
        running.stop(timeout=30)  # raises TimeoutError if the accept was not woken
    assert not running.is_alive()
    assert running.error is None
    assert server.lock is None


def test_stop_wakes_a_daemon_that_never_served(tmp_path: Path) -> None:
    server = Idle(pid_file_name=str(tmp_path / "fresh.pid"), host="127.0.0.1", port=0)
    running = server.start_in_thread()
    running.stop(timeout=30)
    assert not running.is_alive()
    assert running.error is None


def test_quit_flag_set_the_0_4_way_is_still_noticed(tmp_path: Path) -> None:
    class Patient(Idle):
        socket_timeout = 0.05

    server = Patient(pid_file_name=str(tmp_path / "flag.pid"), host="127.0.0.1", port=0)
    running = server.start_in_thread()
    assert _one_shot(running.address, b"status") == b"idle"
    server.quit_flag = True  # no stop(): the loop must see it within socket_timeout
    running.join(30)
    assert not running.is_alive()
    assert running.error is None


def test_a_slow_client_goes_to_the_poller_and_the_idle_path_resumes(tmp_path: Path) -> None:
    server = Idle(pid_file_name=str(tmp_path / "slow.pid"), host="127.0.0.1", port=0)
    with server.start_in_thread() as running:
        port = running.address
        slow = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            # Accepted with nothing to read: it waits in the poller, not in the way.
            assert [_one_shot(port, b"status") for _ in range(3)] == [b"idle"] * 3
            with Client(host="127.0.0.1", port=port, persistent=True) as client:
                assert [client.send_message("status") for _ in range(3)] == ["idle"] * 3
                assert _one_shot(port, b"status") == b"idle"  # next to a framed client
            slow.sendall(b"status")
            assert slow.recv(1024) == b"idle"
        finally:
            slow.close()
        # Every connection is closed again: the loop is back in accept() and serves on.
        assert [_one_shot(port, b"status") for _ in range(20)] == [b"idle"] * 20
        assert server.served == 3 + 3 + 1 + 1 + 20


def test_a_flood_of_one_shot_clients_all_get_their_reply(tmp_path: Path) -> None:
    server = Idle(pid_file_name=str(tmp_path / "flood.pid"), host="127.0.0.1", port=0)
    replies: list[bytes] = []
    with server.start_in_thread() as running:

        def client() -> None:
            for _ in range(40):
                replies.append(_one_shot(running.address, b"status"))

        threads = [threading.Thread(target=client) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert replies == [b"idle"] * 640


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_wakes_an_idle_daemon_process(
    tmp_path: Path,
    notify_socket: tuple[socket.socket, str],
    free_port: Callable[[], int],
    signum: int,
) -> None:
    notify, path = notify_socket
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "daemons" / "idle_daemon.py"), str(port),
         str(tmp_path / "idle.pid")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NOTIFY_SOCKET": path},
    )  # fmt: skip
    try:
        assert notify.recv(4096).startswith(b"READY=1")  # sent once it listens
        assert _one_shot(port, b"status") == b"idle"
        # The reply is out: the daemon is back asleep in accept() (no timeout for an hour).
        deadline = time.monotonic() + 30
        while _state(proc.pid) != "S" and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signum)
        assert notify.recv(4096) == b"STOPPING=1"
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped normally" in out
    assert not (tmp_path / "idle.pid").exists()


def _state(pid: int) -> str:
    """The process state letter from /proc (S: asleep), or "" where there is no /proc."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "S"


def test_stop_while_the_daemon_closes_after_quit(tmp_path: Path) -> None:
    # stop() from this thread races the loop's own close() after `quit`: neither may
    # raise, and no socket of the stop may be left open (ResourceWarning is an error).
    for n in range(20):
        server = Idle(pid_file_name=str(tmp_path / f"race{n}.pid"), host="127.0.0.1", port=0)
        running = server.start_in_thread()
        assert _one_shot(running.address, b"quit") == b"Goodbye!"
        running.stop(timeout=30)
        assert running.error is None


def test_a_daemon_without_socket_timeout_serves_and_stops(tmp_path: Path) -> None:
    class Unbounded(Idle):
        socket_timeout = None  # type: ignore[assignment]  # 0.4 daemons may set it so

    server = Unbounded(pid_file_name=str(tmp_path / "none.pid"), host="127.0.0.1", port=0)
    with server.start_in_thread() as running:
        assert _one_shot(running.address, b"status") == b"idle"
    assert not running.is_alive()
    assert running.error is None
