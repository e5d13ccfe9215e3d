"""The embedded server from private folders, and never left running by its starter."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest

from lab_utils.database import EmbeddedError, EmbeddedPostgres, reachable_temp_dir
from lab_utils.database.embedded import find_binaries

AS_ROOT = os.geteuid() == 0


def _port_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _wait_until(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"still waiting: {what}"
        time.sleep(0.05)


def _answers(server: EmbeddedPostgres) -> int:
    connection = psycopg2.connect(server.dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 41 + 1")
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


@pytest.fixture
def private(tmp_path: Path) -> Path:
    """A folder with mode 0700, like a home folder or a clone in one."""
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    folder.chmod(0o700)
    return folder


def _install_inside(private: Path) -> Path:
    """Copy the server's installation into ``private`` the way a venv holds it."""
    found = find_binaries()
    install = found.parent
    top = install.parent.parent
    for part in (install, top / f"{install.parent.name}.libs"):
        if part.is_dir():
            shutil.copytree(part, private / part.relative_to(top), symlinks=True)
    return private / install.relative_to(top) / found.name


def test_server_runs_with_binaries_inside_a_private_folder(private: Path) -> None:
    bin_dir = _install_inside(private)
    with EmbeddedPostgres(bin_dir=bin_dir) as server:
        assert _answers(server) == 42
        if AS_ROOT:  # the unprivileged server user runs a reachable copy instead
            assert not server.bin.is_relative_to(private)


def test_temporary_data_folder_avoids_a_private_tmpdir(
    private: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    with EmbeddedPostgres() as server:
        assert _answers(server) == 42
        if AS_ROOT:
            assert not server.root.is_relative_to(private)


def test_reachable_temp_dir_holds_a_cluster_across_restarts(
    private: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # as nox's TMPDIR in a 0700 clone
    root = reachable_temp_dir("lab-db-restart-")
    try:
        server = EmbeddedPostgres(root / "pg")
        with server:
            server.create_database("kept")
        with server:
            assert _answers(server) == 42
            connection = psycopg2.connect(server.dsn.replace("dbname=postgres", "dbname=kept"))
            connection.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(not AS_ROOT, reason="only a server started by root runs as another user")
def test_data_folder_the_server_user_cannot_reach_is_one_clear_line(private: Path) -> None:
    with pytest.raises(EmbeddedError) as raised:
        EmbeddedPostgres(data_dir=private / "cluster")
    message = str(raised.value)
    assert "\n" not in message
    assert "has mode 0700, so user" in message
    assert "choose a data folder" in message


STARTER = """
import sys, time
from lab_utils.database import EmbeddedPostgres
server = EmbeddedPostgres().start()
print(server.port, server.root, flush=True)
if sys.argv[1] == "raises":
    raise RuntimeError("the app failed")
if sys.argv[1] == "killed":
    time.sleep(600)
"""


@pytest.mark.parametrize(
    ("ending", "signal_number"),
    [("returns", None), ("raises", None), ("killed", signal.SIGTERM), ("killed", signal.SIGKILL)],
    ids=["normal-exit", "exception", "sigterm", "sigkill"],
)
def test_server_goes_down_with_a_starter_that_never_called_stop(
    ending: str, signal_number: int | None
) -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, ending],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    port_text, root = starter.stdout.readline().split()
    port = int(port_text)
    assert not _port_closed(port)
    if signal_number is not None:
        starter.send_signal(signal_number)
    _, errors = starter.communicate(timeout=60)
    _wait_until(lambda: _port_closed(port), f"port {port} to close")
    _wait_until(lambda: not Path(root).exists(), f"{root} to be removed")
    if ending == "raises":
        assert "the app failed" in errors
