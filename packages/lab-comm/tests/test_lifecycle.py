"""A daemon's life: readiness, threads, PID files, built-in commands, quiet normal life."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zc.lockfile

from lab_utils.socket_comm import Client, Server, command


class Cryostat(Server):
    """Cryostat monitor of the beam line.

    Longer text that is not part of the description.
    """

    @command
    def status(self) -> str:
        """Show the state."""
        return "cold"


def test_start_in_thread_returns_once_listening_and_stops_on_exit(tmp_path: Path) -> None:
    server = Cryostat(pid_file_name=str(tmp_path / "c.pid"), host="127.0.0.1", port=0)
    assert not server.is_serving()
    with server.start_in_thread() as running:
        assert server.is_serving()
        assert running.address == server.address != 0
        assert Client(host="127.0.0.1", port=running.address).send_message("status") == "cold"
    assert not running.is_alive()
    assert not server.is_serving()
    assert server.lock is None


def test_wait_until_serving_from_another_thread(tmp_path: Path) -> None:
    server = Cryostat(pid_file_name=str(tmp_path / "c.pid"), host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.start_daemon)
    thread.start()
    try:
        assert server.wait_until_serving(timeout=30)
        assert Client(host="127.0.0.1", port=server.address).send_message("ping") == "pong"
    finally:
        server.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert server.wait_until_serving(timeout=0) is False  # ended: no waiting


def test_wait_until_serving_returns_false_when_the_bind_failed(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        server = Server(
            pid_file_name=str(tmp_path / "d.pid"), host="127.0.0.1", port=busy.getsockname()[1]
        )
        raised: list[BaseException] = []

        def run() -> None:
            try:
                server.start_daemon()
            except OSError as error:
                raised.append(error)

        thread = threading.Thread(target=run)
        thread.start()
        assert server.wait_until_serving(timeout=30) is False
        thread.join(30)
        assert len(raised) == 1


def test_default_pid_file_is_per_daemon_in_the_runtime_folder_logged_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    caplog.set_level(logging.INFO)
    first = Cryostat(host="127.0.0.1", port=0)
    second = Server(host="127.0.0.1", port=0)  # 0.4 shared one file for both
    third = Server(host="127.0.0.1", port=0)  # system-chosen ports never exclude each other
    try:
        assert len({first.pid_file_name, second.pid_file_name, third.pid_file_name}) == 3
        assert Path(first.pid_file_name or "").parent == tmp_path / "lab-comm"
        assert Path(first.pid_file_name or "").name.startswith("cryostat-")
        assert f"PID file: {first.pid_file_name}" in caplog.text
        with first.start_in_thread():
            assert Path(first.pid_file_name or "").exists()
        assert not Path(first.pid_file_name or "").exists()  # removed on a clean exit
    finally:
        first.close()
        second.close()
        third.close()


def test_default_pid_file_follows_the_port_and_still_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))  # systemd's RuntimeDirectory=
    first = Cryostat(port=15071)
    try:
        assert first.pid_file_name == str(tmp_path / "cryostat-15071.pid")
        with pytest.raises(zc.lockfile.LockError):
            Cryostat(port=15071)
    finally:
        first.close()


def test_explicit_pid_file_is_honoured_as_argument_and_class_attribute(tmp_path: Path) -> None:
    class Pinned(Server):
        pid_file_name = str(tmp_path / "pinned.pid")

    server = Pinned(port=0)
    assert server.pid_file_name == str(tmp_path / "pinned.pid")
    assert Path(server.pid_file_name).read_text().strip().split(";")[0].isdigit()
    server.close()
    argument = Server(None, str(tmp_path / "arg.pid"), port=0)
    assert argument.pid_file_name == str(tmp_path / "arg.pid")
    argument.close()
    assert not (tmp_path / "arg.pid").exists()


def test_builtin_ping_and_help(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = Cryostat(pid_file_name=str(tmp_path / "c.pid"), port=0)
    try:
        caplog.set_level(logging.INFO)
        assert server.execute("ping") == "pong"
        full = server.execute("help")
        assert full.startswith("\nDAEMON HELP\nCryostat monitor of the beam line.\n")
        assert re.search(r"^    help\s+lists the commands", full, re.MULTILINE)
        assert re.search(r"^    ping\s+answers pong", full, re.MULTILINE)
        assert full.endswith("Send 'help COMMAND' for the options of one command.")
        one = server.execute("help help")
        assert one.splitlines()[0] == "help: lists the commands, or the options of one"
        assert "command" in one
        assert server.execute("help bogus").startswith("Error! unknown command 'bogus'")
        assert {r.levelno for r in caplog.records if "Help requested" in r.getMessage()} == {
            logging.INFO
        }
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "unknown command 'bogus'" in warnings[0]
    finally:
        server.close()


def test_a_daemon_s_own_ping_and_help_win(tmp_path: Path) -> None:
    class Own(Server):
        def __init__(self) -> None:
            super().__init__(pid_file_name=str(tmp_path / "o.pid"), port=0)
            for word in ("ping", "help"):
                sub = self.sp.add_parser(name=word, description=f"own {word}")
                sub.set_defaults(func=lambda word=word: f"own {word}", which=word)

    server = Own()
    try:
        assert server.execute("ping") == "own ping"
        assert server.execute("help") == "own help"
    finally:
        server.close()


def test_description_from_the_attribute_or_the_class(tmp_path: Path) -> None:
    class Named(Server):
        description = "Pressure gauges of hall B"

    class Plain(Server):
        pass

    for cls, expected in (
        (Named, "Pressure gauges of hall B"),
        (Plain, "Plain daemon"),
        (Cryostat, "Cryostat monitor of the beam line."),
    ):
        server = cls(pid_file_name=str(tmp_path / f"{cls.__name__}.pid"), port=0)
        try:
            assert server.parser.description == expected
            assert "the user should override this" not in server.execute("help")
        finally:
            server.close()


def test_regex_is_the_0_4_splitting_pattern(tmp_path: Path) -> None:
    server = Server(pid_file_name=str(tmp_path / "r.pid"), port=0)
    try:
        assert server.regex.split("set --path {/a b/c} --n 2") == [
            "set", "--path", "{/a b/c}", "--n", "2",
        ]  # fmt: skip
    finally:
        server.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stop_and_help_are_normal_life_not_warnings(
    start_daemon: Callable[..., Any], signum: int
) -> None:
    daemon = start_daemon()
    client = Client(host="127.0.0.1", port=daemon.port)
    assert "DAEMON HELP" in client.send_message("help")
    daemon.proc.send_signal(signum)
    out, err = daemon.finish()
    assert daemon.proc.returncode == 0
    # The daemon configures no logging, so Python prints WARNING and above on stderr.
    assert err == ""
    assert "stopped normally" in out


def test_a_bug_below_the_handlers_costs_one_connection_not_the_daemon(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Buggy(Cryostat):
        def execute(self, message: str) -> str:
            if message == "boom":
                raise RuntimeError("bug in an execute override")
            return super().execute(message)

    server = Buggy(pid_file_name=str(tmp_path / "b.pid"), host="127.0.0.1", port=0)
    with server.start_in_thread() as running:
        with socket.create_connection(("127.0.0.1", running.address), timeout=30) as legacy:
            legacy.sendall(b"boom")
            assert legacy.recv(1024) == b""  # closed without a reply
        with Client(host="127.0.0.1", port=running.address, persistent=True) as client:
            assert client.send_message("status") == "cold"
            with pytest.raises(OSError):
                client.send_message("boom")
        assert Client(host="127.0.0.1", port=running.address).send_message("status") == "cold"
    assert caplog.text.count("RuntimeError: bug in an execute override") == 2


def test_no_command_runs_after_quit_even_from_connections_already_queued(tmp_path: Path) -> None:
    release = threading.Event()
    ran: list[str] = []

    class Gate(Server):
        @command
        def hold(self) -> str:
            """Wait until the test has queued more connections."""
            release.wait(30)
            return "held"

        @command
        def mark(self) -> str:
            """Record that it ran."""
            ran.append("mark")
            return "marked"

    server = Gate(pid_file_name=str(tmp_path / "g.pid"), host="127.0.0.1", port=0)
    running = server.start_in_thread()
    address = ("127.0.0.1", running.address)
    first = socket.create_connection(address, timeout=30)
    first.sendall(b"hold")
    deadline = time.monotonic() + 30
    while server.message != "hold" and time.monotonic() < deadline:
        time.sleep(0.01)  # the loop is now inside the handler
    queued = []
    for message in (b"quit", b"mark"):
        sock = socket.create_connection(address, timeout=30)  # queued by the kernel
        sock.sendall(message)
        queued.append(sock)
    release.set()
    try:
        assert first.recv(1024) == b"held"
        assert queued[0].recv(1024) == b"Goodbye!"
        try:
            unanswered = queued[1].recv(1024)
        except ConnectionResetError:  # closed with the message unread: a reset, no reply
            unanswered = b""
        assert unanswered == b""
        running.join(30)
        assert not running.is_alive()
        assert ran == []
    finally:
        for sock in (first, *queued):
            sock.close()


@pytest.fixture
def no_runtime_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Neither systemd's nor the XDG runtime folder; the temporary folder is ``tmp_path``."""
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_without_runtime_folders_pid_files_go_to_a_private_temporary_folder(
    no_runtime_folders: Path,
) -> None:
    tmp_path = no_runtime_folders
    server = Cryostat(port=15072)
    try:
        folder = tmp_path / f"lab-comm-{os.getuid()}"
        assert server.pid_file_name == str(folder / "cryostat-15072.pid")
        assert folder.stat().st_mode & 0o777 == 0o700
    finally:
        server.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_temporary_pid_folder_owned_by_someone_else_is_refused(
    no_runtime_folders: Path,
) -> None:
    tmp_path = no_runtime_folders
    squatted = tmp_path / f"lab-comm-{os.getuid()}"
    squatted.mkdir()
    os.chown(squatted, 65534, 65534)
    with pytest.raises(PermissionError, match=str(squatted)):
        Cryostat(port=15073)
