"""Our socket_comm against the unmodified lab_utils 0.4.0 and 0.5.x, both directions.

The old releases run in their own virtual environments, named by LAB_COMM_OLD_PEERS
("VERSION=/path/to/python,..."); ``nox -s interop`` builds them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lab_utils.socket_comm import Client, Server


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
def old_python(request: pytest.FixtureRequest) -> str:
    _, python = request.param
    assert python, "set LAB_COMM_OLD_PEERS (nox -s interop does) to run the interop tests"
    return str(python)


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
    thread = threading.Thread(target=server.start_daemon)
    thread.start()
    try:
        while server.address is None and thread.is_alive():
            thread.join(0.01)
        script = textwrap.dedent(f"""
            from lab_utils.socket_comm import Client
            c = Client(host="127.0.0.1", port={server.address})
            print(c.send_message("echo --text {{a b}}"))
            print(c.send_message("bogus")[:6])
        """)
        result = subprocess.run(
            [old_python, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        server.stop()
        thread.join(20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["echo: a b", "Error!"]


def test_our_client_to_old_server(old_python: str, tmp_path: Path) -> None:
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
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        client = Client(host="127.0.0.1", port=port, timeout=20)
        assert client.send_message("echo --text {x y}") == "old echo: x y"
        assert client.protocol == "legacy"
        assert client.send_message("echo --text z") == "old echo: z"
        assert Client(host="127.0.0.1", port=port, timeout=20).send_message("quit") == "Goodbye!"
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
