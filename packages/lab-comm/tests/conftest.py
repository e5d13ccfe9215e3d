"""Daemons in subprocesses on loopback, helpers to talk to them, systemd's notify socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(name="free_port")
def free_port_finder() -> Callable[[], int]:
    """:func:`free_port` itself: a port nothing listens on, a daemon that is down."""
    return free_port


def wait_listening(
    port: int, proc: subprocess.Popen[str] | None = None, timeout: float = 30
) -> None:
    """Wait until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"daemon exited early: {proc.communicate()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class Daemon:
    """A daemon subprocess."""

    proc: subprocess.Popen[str]
    port: int
    pid_file: Path
    marker: Path

    def finish(self, timeout: float = 30) -> tuple[str, str]:
        """Wait for the process to exit by itself; return its output."""
        return self.proc.communicate(timeout=timeout)

    def stop(self) -> tuple[str, str]:
        """Make sure the process is gone; return its output."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start ``tests/daemons/cryo_daemon.py`` (optionally with a secret); stopped at teardown."""
    started: list[Daemon] = []

    def start(
        secret: str | None = None,
        pid_file: Path | None = None,
        wait: bool = True,
        env: dict[str, str] | None = None,
    ) -> Daemon:
        port = free_port()
        pid = pid_file or tmp_path / f"cryo-{port}.pid"
        marker = tmp_path / f"marker-{port}"
        args = [
            sys.executable,
            str(HERE / "daemons" / "cryo_daemon.py"),
            str(port),
            str(pid),
            str(marker),
        ]
        if secret:
            args.append(secret)
        proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=None if env is None else {**os.environ, **env},
        )
        daemon = Daemon(proc, port, pid, marker)
        started.append(daemon)
        if wait:
            wait_listening(port, proc)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


@pytest.fixture
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    """One running cryo daemon."""
    return start_daemon()


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket, as systemd creates one; short path (AF_UNIX limit)."""
    folder = Path(tempfile.mkdtemp(prefix="labcomm-"))
    path = folder / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    try:
        yield sock, str(path)
    finally:
        sock.close()
        path.unlink(missing_ok=True)
        folder.rmdir()
