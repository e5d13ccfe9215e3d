"""Our socket_comm against the unmodified lab_utils 0.4.0 and 0.5.x, both directions.

The old releases run in their own virtual environments, named by LAB_COMM_OLD_PEERS
("VERSION=/path/to/python,..."); ``nox -s interop`` builds them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab_utils.socket_comm import Client, Server, command


def _peers() -> list[tuple[str, str]]:
    spec = os.environ.get("LAB_COMM_OLD_PEERS", "")
    pairs = [tuple(item.split("=", 1)) for item in spec.split(",") if "=" in item]
    return [(version, python) for version, python in pairs] or [("missing", "")]


PEERS = _peers()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=PEERS, ids=[version for version, _ in PEERS])
def old_peer(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The version of an old release and the Python of its virtual environment."""
    version, python = request.param
    assert python, "set LAB_COMM_OLD_PEERS (nox -s interop does) to run the interop tests"
    return str(version), str(python)


@pytest.fixture
def old_python(old_peer: tuple[str, str]) -> str:
    return old_peer[1]


@pytest.fixture
def old_daemon(old_python: str, tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """An unmodified old release serving an `echo` command (and no `status`) on loopback."""
    port = _free_port()
    script = textwrap.dedent(f"""
        from lab_utils.socket_comm import Server
        class Echo(Server):
            def __init__(self):
                super().__init__(
                    pid_file_name={str(tmp_path / "old.pid")!r}, host="127.0.0.1", port={port}
                )
                p = self.sp.add_parser(name="echo", description="echo")
                p.add_argument("--text", default="")
                p.set_defaults(func=self.echo, which="echo")
            def echo(self):
                self.reply = "old echo: " + self.namespace.text
        Echo().start_daemon()
    """)
    proc = subprocess.Popen(
        [old_python, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


class _Echo(Server):
    def __init__(self, pid: str) -> None:
        super().__init__(pid_file_name=pid, host="127.0.0.1", port=0)
        echo = self.sp.add_parser(name="echo", description="echo")
        echo.add_argument("--text", default="")
        echo.set_defaults(func=self.echo, which="echo")

    def echo(self) -> None:
        self.reply = f"echo: {self.namespace.text}"


def test_old_client_to_our_server(old_python: str, tmp_path: Path) -> None:
    server = _Echo(str(tmp_path / "ours.pid"))
    with server.start_in_thread() as running:
        script = textwrap.dedent(f"""
            from lab_utils.socket_comm import Client
            c = Client(host="127.0.0.1", port={running.address})
            print(c.send_message("echo --text {{a b}}"))
            print(c.send_message("bogus")[:6])
        """)
        result = subprocess.run(
            [old_python, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["echo: a b", "Error!"]


def test_our_client_to_old_server(old_daemon: tuple[int, subprocess.Popen[str]]) -> None:
    port, proc = old_daemon
    client = Client(host="127.0.0.1", port=port, timeout=20)
    assert client.send_message("echo --text {x y}") == "old echo: x y"
    assert client.protocol == "legacy"
    assert client.send_message("echo --text z") == "old echo: z"
    assert Client(host="127.0.0.1", port=port, timeout=20).send_message("quit") == "Goodbye!"
    proc.communicate(timeout=30)
    assert proc.returncode == 0


# -- our command line against old daemons: fleet and shell ---------------------------------


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab_utils.socket_comm", *args],
        input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


class Cryostat(Server):
    @command
    def status(self) -> str:
        """Show the state."""
        return "cold, 4.2 K"


@pytest.fixture
def our_daemon(tmp_path: Path) -> Iterator[int]:
    server = Cryostat(pid_file_name=str(tmp_path / "ours.pid"), host="127.0.0.1", port=0)
    with server.start_in_thread() as running:
        yield running.address


def test_fleet_shows_an_old_daemon_without_status_as_up(
    old_peer: tuple[str, str],
    old_daemon: tuple[int, subprocess.Popen[str]],
    our_daemon: int,
    tmp_path: Path,
) -> None:
    version, (old_port, _) = old_peer[0], old_daemon
    fleet = tmp_path / "fleet.ini"
    fleet.write_text(
        f"[cryostat]\nhost = 127.0.0.1\nport = {our_daemon}\n\n"
        f"[old-{version}]\nhost = 127.0.0.1\nport = {old_port}\n\n"
        f"[old-echo]\nhost = 127.0.0.1\nport = {old_port}\ncommand = echo --text {{still here}}\n\n"
        f"[pressure]\nhost = 127.0.0.1\nport = {_free_port()}\n"
    )
    result = _cli("fleet", str(fleet))
    print(result.stdout)  # the table, for the record of a test run (pytest -s)
    assert result.returncode == 1, result.stderr  # one daemon is down
    rows = {line.split()[0]: line.split(None, 4) for line in result.stdout.splitlines()[2:]}
    assert rows["cryostat"][2] == "up"
    assert rows["cryostat"][4].endswith("cold, 4.2 K")
    assert rows[f"old-{version}"][2] == "up"
    # 0.4.0 lists its commands after the error; 0.5.12's help text fails on this daemon.
    assert rows[f"old-{version}"][4].endswith(
        "answers, but has no 'status' command"
        if version == "0.4.0"
        else "answers with an empty reply (a 0.x daemon's help failed)"
    )
    assert rows["old-echo"][2] == "up"
    assert rows["old-echo"][4].endswith("old echo: still here")
    assert rows["pressure"][2] == "down"


def test_the_shell_connects_to_an_old_daemon_and_completes_from_its_help(
    old_peer: tuple[str, str], old_daemon: tuple[int, subprocess.Popen[str]]
) -> None:
    version, (port, _) = old_peer[0], old_daemon
    shell = _cli(
        "--host", "127.0.0.1", "--port", str(port), "shell", stdin="echo --text hi\nexit\n"
    )
    assert shell.returncode == 0, shell.stderr
    first = shell.stdout.splitlines()[0]
    assert first.startswith(f"connected to 127.0.0.1:{port} (")
    if version == "0.4.0":  # 0.5.12's help text fails on this daemon: it sends nothing
        assert "commands; Tab completes" in first, "the old daemon's help listing was not read"
    assert "old echo: hi" in shell.stdout
