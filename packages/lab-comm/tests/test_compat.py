"""Daemons written for lab_utils 0.4 run unchanged (compat scenarios 1-14)."""

from __future__ import annotations

import configparser
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zc.lockfile

from lab_utils.socket_comm import Client, MessageError, Server


def test_scenario_1_and_3_commands_added_after_init_reply(daemon: Any) -> None:
    client = Client(host="127.0.0.1", port=daemon.port)
    assert client.send_message("status") == "running"
    assert isinstance(client.send_message("status"), str)


def test_scenario_4_optional_presence(daemon: Any) -> None:
    client = Client(host="127.0.0.1", port=daemon.port)
    assert client.send_message("status") == "running"
    assert client.send_message("status --gauge-info") == "running gauge=None"
    assert client.send_message("status --gauge-info 3") == "running gauge=3"


def test_scenario_5_comma_options_reached_by_prefix(daemon: Any) -> None:
    client = Client(host="127.0.0.1", port=daemon.port)
    assert client.send_message("logging --restart") == "start=False db=None restart=True"
    assert client.send_message("logging --r") == "start=False db=None restart=True"
    assert client.send_message("logging -r").startswith("Error! ")


def test_scenario_6_brace_groups(daemon: Any) -> None:
    client = Client(host="127.0.0.1", port=daemon.port)
    reply = client.send_message("logging --start --use-database {/path with space/db.ini}\n")
    assert reply == "start=True db=/path with space/db.ini restart=False"


def test_scenario_7_quit_calls_the_override_and_releases_everything(daemon: Any) -> None:
    reply = Client(host="127.0.0.1", port=daemon.port).send_message("quit")
    assert reply == "Cryo daemon stopped, bye!"
    out, _ = daemon.finish()
    assert daemon.proc.returncode == 0
    assert "stopped normally" in out
    assert daemon.marker.read_text() == "quit called"
    zc.lockfile.LockFile(str(daemon.pid_file)).close()  # the lock is free again


def test_scenario_8_invalid_commands_get_error_and_help_even_with_positionals(daemon: Any) -> None:
    client = Client(host="127.0.0.1", port=daemon.port)
    reply = client.send_message("bogus")
    assert reply.startswith("Error! ")
    assert "DAEMON HELP" in reply
    assert "curve_load" in reply and "filename" in reply and "--gauge-info, -g" in reply
    assert client.send_message("curve_load").startswith("Error! ")
    assert client.send_message("curve_load /curves/x.340") == "loaded /curves/x.340"
    assert client.send_message("quit now").startswith("Error! ")


def test_scenario_9_exceptions_from_handlers_never_kill_the_daemon(daemon: Any) -> None:
    client = Client(host="127.0.0.1", port=daemon.port)
    assert (
        client.send_message("fail")
        == "Unknown exception! Check daemon log!\nStateError: valve is closed"
    )
    reply = client.send_message("nowhich")
    assert reply.startswith("Daemon error, maybe you forgot to set the 'which' argument?")
    assert "AttributeError" in reply
    assert client.send_message("status") == "running"


def test_scenario_10_second_instance_raises_lock_error_not_oserror(
    start_daemon: Callable[..., Any],
) -> None:
    first = start_daemon()
    second = start_daemon(pid_file=first.pid_file, wait=False)
    out, _ = second.finish()
    assert second.proc.returncode == 3
    assert out.strip() == "LockError lock=True os=False"
    assert Client(host="127.0.0.1", port=first.port).send_message("status") == "running"


def test_scenario_11_busy_port_raises_oserror_and_frees_the_lock(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        server = Server(
            pid_file_name=str(tmp_path / "d.pid"), host="127.0.0.1", port=busy.getsockname()[1]
        )
        with pytest.raises(OSError):
            server.start_daemon()
    zc.lockfile.LockFile(str(tmp_path / "d.pid")).close()


def test_scenario_12_client_config_and_errors(tmp_path: Path, daemon: Any) -> None:
    good = tmp_path / "server.ini"
    good.write_text(f"[Overall]\nhost = 127.0.0.1\nport = {daemon.port}\n")
    client = Client(config_file=str(good))
    assert (client.host, client.port) == ("127.0.0.1", daemon.port)
    assert client.send_message("status") == "running"
    bad = tmp_path / "bad.ini"
    bad.write_text("[Other]\nx = 1\n")
    with pytest.raises(configparser.Error):
        Client(config_file=str(bad))
    with pytest.raises(TypeError):
        client.send_message(None)  # type: ignore[arg-type]
    daemon.stop()
    with pytest.raises(OSError):
        Client(host="127.0.0.1", port=daemon.port, timeout=5).send_message("status")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_scenario_14_signals_call_quit_and_release_the_lock(daemon: Any, signum: int) -> None:
    daemon.proc.send_signal(signum)
    out, err = daemon.finish()
    assert daemon.proc.returncode == 0, err
    assert "stopped normally" in out
    assert daemon.marker.read_text() == "quit called"
    zc.lockfile.LockFile(str(daemon.pid_file)).close()


def test_scenario_2_create_parser_override(tmp_path: Path) -> None:
    class Override(Server):
        def create_parser(self) -> None:
            super().create_parser()
            status = self.sp.add_parser(name="status", description="status")
            status.set_defaults(func=self.status, which="status")

        def status(self) -> None:
            self.reply += "ok"

    server = Override(str(tmp_path / "none.ini"), str(tmp_path / "o.pid"))
    assert server.execute("status") == "ok"
    assert server.execute("quit") == "Goodbye!"
    assert server.quit_flag
    server.close()


def test_start_daemon_in_a_thread_and_a_handler_stopping_it(tmp_path: Path) -> None:
    class Stopper(Server):
        def __init__(self) -> None:
            super().__init__(pid_file_name=str(tmp_path / "t.pid"), host="127.0.0.1", port=0)
            self.sp.add_parser(name="shutdown", description="stop").set_defaults(
                func=self.shutdown, which="shutdown"
            )

        def shutdown(self) -> None:
            self.reply = "stopping"
            self.stop()

    server = Stopper()
    thread = threading.Thread(target=server.start_daemon)
    thread.start()
    assert server.wait_until_serving(timeout=30)
    assert Client(host="127.0.0.1", port=server.address).send_message("shutdown") == "stopping"
    thread.join(20)
    assert not thread.is_alive()
    assert server.lock is None


def test_message_error_is_a_base_exception() -> None:
    assert issubclass(MessageError, BaseException)
    assert not issubclass(MessageError, Exception)


def test_cli_send(daemon: Any) -> None:
    run = [
        sys.executable,
        "-m",
        "lab_utils.socket_comm",
        "--host",
        "127.0.0.1",
        "--port",
        str(daemon.port),
        "send",
    ]
    ok = subprocess.run([*run, "status"], capture_output=True, text=True, timeout=60, check=False)
    assert (ok.returncode, ok.stdout) == (0, "running\n")
    bad = subprocess.run([*run, "bogus"], capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1
    assert bad.stdout.startswith("Error! ")
    daemon.stop()
    gone = subprocess.run([*run, "status"], capture_output=True, text=True, timeout=60, check=False)
    assert gone.returncode == 2
    assert "cannot reach the daemon" in gone.stderr


def test_shell_completion_words_come_from_the_daemon_help(daemon: Any) -> None:
    from lab_utils.socket_comm.__main__ import commands_from_help

    help_reply = Client(host="127.0.0.1", port=daemon.port).send_message("?")
    commands = commands_from_help(help_reply)
    assert {"quit", "status", "logging", "curve_load", "echo"} <= set(commands)
    assert commands["logging"] == ["--start", "--use-database", "--restart"]
    assert commands["status"] == ["--gauge-info"]


def test_cli_shell_sends_each_line(daemon: Any) -> None:
    command = [sys.executable, "-m", "lab_utils.socket_comm", "--port", str(daemon.port), "shell"]
    lines = "status\necho --text {two words}\nquit\n"
    shell = subprocess.run(
        command, input=lines, capture_output=True, text=True, timeout=60, check=False
    )
    assert shell.returncode == 0, shell.stderr
    assert "running" in shell.stdout
    assert "two words" in shell.stdout
    assert "Cryo daemon stopped, bye!" in shell.stdout
    daemon.finish()


def test_every_0_4_attribute_and_method_a_daemon_may_touch_is_there(tmp_path: Path) -> None:
    server = Server(pid_file_name=str(tmp_path / "a.pid"), port=0)
    try:
        for name in (
            "quit_flag", "host", "port", "sock", "address", "max_backlog", "socket_timeout",
            "logger", "message", "reply", "pid_file_name", "lock", "namespace", "parser",
            "delimiter_left", "delimiter_right", "regex", "sp",
            "daemonize", "config", "start_daemon", "close", "create_parser", "quit",
            "signal_handler",
        ):  # fmt: skip
            assert hasattr(server, name), name
        assert server.pid_file_name == str(tmp_path / "a.pid")
        assert server.socket_timeout == 1.0
    finally:
        server.close()
