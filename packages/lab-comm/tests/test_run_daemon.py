"""``sys.exit(run_daemon(Daemon, ...))``: a daemon that cannot start says why, status 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lab_utils.socket_comm import Client

SCRIPT = Path(__file__).parent / "daemons" / "run_daemon.py"


def run(*args: str, debug: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LAB_UTILS_DEBUG"}
    if debug:
        env["LAB_UTILS_DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip


def test_a_pid_file_in_a_missing_folder_is_a_config_error_exit_status_2(tmp_path: Path) -> None:
    config = tmp_path / "daemon.ini"
    config.write_text("[Overall]\nport = 0\npid_file_name = run/cryo.pid\n")
    done = run(str(config))
    pid = tmp_path / "run" / "cryo.pid"
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: pid_file_name of [Overall] in {config}: cannot create the PID file, the"
        f" folder {pid.parent} does not exist (create it, or name a PID file in an existing"
        f" folder): {pid}",
        "hint: set LAB_UTILS_DEBUG=1 to see the traceback",
    ]


def test_a_pid_file_argument_is_named_as_the_argument(tmp_path: Path) -> None:
    config = tmp_path / "daemon.ini"
    config.write_text("[Overall]\nport = 0\n")
    pid = tmp_path / "run" / "cryo.pid"
    done = run(str(config), str(pid))
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        f"error: pid_file_name: cannot create the PID file, the folder {pid.parent} does not"
        f" exist (create it, or name a PID file in an existing folder) ({pid})"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("port = abc", "port = 'abc' in {config} is not a whole number from 0 to 65535"),
        ("tls_cert = nowhere.pem", "tls_cert {folder}/nowhere.pem named in [Overall] of {config}"),
    ],
)
def test_config_values_that_cannot_be_used_exit_with_status_2(
    tmp_path: Path, line: str, expected: str
) -> None:
    config = tmp_path / "daemon.ini"
    config.write_text(f"[Overall]\n{line}\n")
    done = run(str(config), str(tmp_path / "d.pid"))
    assert done.returncode == 2
    (error, hint) = done.stderr.splitlines()
    assert (error[:7], hint) == ("error: ", "hint: set LAB_UTILS_DEBUG=1 to see the traceback")
    assert expected.format(config=config, folder=tmp_path) in error
    assert not (tmp_path / "d.pid").exists()


def test_the_traceback_only_with_lab_utils_debug(tmp_path: Path) -> None:
    config = tmp_path / "daemon.ini"
    config.write_text("[Overall]\nport = abc\n")
    done = run(str(config), debug=True)
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: [Overall] port = 'abc'")


def test_a_daemon_that_started_and_was_told_to_quit_exits_0(
    tmp_path: Path, free_port: Callable[[], int], notify_socket: tuple[socket.socket, str]
) -> None:
    notify, path = notify_socket
    config = tmp_path / "daemon.ini"
    port = free_port()
    config.write_text(f"[Overall]\nhost = 127.0.0.1\nport = {port}\n")
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(config), str(tmp_path / "d.pid")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NOTIFY_SOCKET": path},
    )  # fmt: skip
    try:
        assert notify.recv(4096).startswith(b"READY=1")  # sent once it listens
        client = Client(host="127.0.0.1", port=port)
        assert client.send_message("status") == "cold"
        assert client.send_message("quit") == "Goodbye!"
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
