"""The command line follows the suite's manners: --version, options anywhere, exit codes
0/1/2, one-line errors naming host:port, secrets off the command line, an honest shell."""

from __future__ import annotations

import configparser
import os
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab_utils.socket_comm import (
    Client,
    ConfigValueError,
    ReplyTimeoutError,
    Server,
    __version__,
    command,
)
from lab_utils.socket_comm.__main__ import main

SECRET = "correct horse battery staple"


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lab_utils.socket_comm`` in a process of its own."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "FORCE_"))}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lab_utils.socket_comm", *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False, env=environment,
    )  # fmt: skip


class Recorder(Server):
    """A daemon that remembers every message and can hold a command until released."""

    def __init__(self, pid: Path, **kwargs: Any) -> None:
        super().__init__(pid_file_name=str(pid), host="127.0.0.1", port=0, **kwargs)
        self.seen: list[str] = []
        self.release = threading.Event()

    def execute(self, message: str) -> str:
        self.seen.append(message)
        return super().execute(message)

    @command
    def hold(self) -> str:
        """Wait until the test releases the daemon."""
        self.release.wait(30)
        return "released"


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[tuple[Recorder, int]]:
    server = Recorder(tmp_path / "recorder.pid")
    with server.start_in_thread() as running:
        try:
            yield server, running.address
        finally:
            server.release.set()  # a held command must not keep the daemon from stopping


def test_version_names_the_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"lab-comm {__version__}\n"


def test_global_options_before_or_after_the_subcommand(
    daemon: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    port = str(daemon.port)
    assert main(["--host", "127.0.0.1", "--port", port, "send", "status"]) == 0
    assert main(["send", "--host", "127.0.0.1", "--port", port, "status"]) == 0
    assert main(["--host", "127.0.0.1", "send", f"--port={port}", "status"]) == 0
    assert capsys.readouterr().out == "running\n" * 3
    # From the first command word on, everything is the daemon's, options included.
    assert main(["send", "--port", port, "echo", "--text", "{--port 1}"]) == 0
    assert capsys.readouterr().out == "--port 1\n"


def test_exit_codes_zero_one_two(daemon: Any, capsys: pytest.CaptureFixture[str]) -> None:
    port = str(daemon.port)
    assert main(["--port", port, "send", "status"]) == 0
    assert main(["--port", port, "send", "bogus"]) == 1  # the daemon said no
    assert main(["--port", port, "send", "fail"]) == 1  # the command raised
    assert main(["--port", port, "send"]) == 2  # nothing to send
    assert main(["--port", "many", "send", "status"]) == 2  # usage
    assert main([]) == 2
    capsys.readouterr()
    daemon.stop()
    assert main(["--port", port, "send", "status"]) == 2  # connection
    assert "cannot reach the daemon" in capsys.readouterr().err


def test_a_refused_connection_is_one_error_line_naming_host_and_port(daemon: Any) -> None:
    daemon.stop()
    gone = run_cli("--host", "127.0.0.1", "--port", str(daemon.port), "send", "status")
    assert gone.returncode == 2
    assert gone.stdout == ""
    lines = gone.stderr.splitlines()
    assert (
        lines[0] == f"error: cannot reach the daemon: connection refused (127.0.0.1:{daemon.port})"
    )
    assert lines[1].startswith("hint: ")
    assert len(lines) == 2, "reported once: no log record before the error line"


def test_debug_adds_the_traceback_and_the_client_log(daemon: Any) -> None:
    daemon.stop()
    gone = run_cli("--port", str(daemon.port), "send", "--debug", "status")
    assert gone.returncode == 2
    assert "Traceback" in gone.stderr
    assert "ConnectionRefusedError" in gone.stderr
    assert gone.stderr.rstrip().splitlines()[-2].startswith("error: cannot reach the daemon")
    by_env = run_cli("--port", str(daemon.port), "send", "status", env={"LAB_UTILS_DEBUG": "1"})
    assert "Traceback" in by_env.stderr


def test_a_missing_tls_ca_file_is_named_as_such(daemon: Any, tmp_path: Path) -> None:
    missing = tmp_path / "lab-ca.pem"
    result = run_cli("--port", str(daemon.port), "send", "--tls-ca", str(missing), "status")
    assert result.returncode == 2
    assert result.stderr == (
        f"error: cannot read the --tls-ca file: No such file or directory ({missing})\n"
    )


def test_no_reply_in_time_is_not_called_unreachable(recorder: tuple[Recorder, int]) -> None:
    server, port = recorder
    try:
        with pytest.raises(ReplyTimeoutError):
            Client(host="127.0.0.1", port=port, timeout=0.5).send_message("hold")
    finally:
        server.release.set()
    server.release.clear()
    try:
        held = run_cli(
            "--host", "127.0.0.1", "--port", str(port), "--timeout", "0.5", "send", "hold"
        )
    finally:
        server.release.set()
    assert held.returncode == 2
    assert held.stderr.splitlines()[0] == (
        f"error: connected, but no reply within 0.5 s (127.0.0.1:{port})"
    )


@pytest.fixture
def guarded(start_daemon: Callable[..., Any]) -> Any:
    """A cryo daemon that serves only clients knowing SECRET."""
    return start_daemon(secret=SECRET)


def test_a_daemon_with_a_secret_refuses_us_with_a_hint(guarded: Any) -> None:
    refused = run_cli("--port", str(guarded.port), "send", "status")
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "error: the daemon refused the message: authentication required"
        f" (localhost:{guarded.port})",
        "hint: give its shared secret with --secret-file FILE or LAB_COMM_SECRET",
    ]
    wrong = run_cli("--port", str(guarded.port), "send", "status", env={"LAB_COMM_SECRET": "no"})
    assert wrong.returncode == 2
    assert "wrong secret" in wrong.stderr


def test_the_secret_from_a_file_the_environment_or_the_option(guarded: Any, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    port = str(guarded.port)
    for args, env in [
        (["--secret-file", str(secret_file)], {}),
        ([], {"LAB_COMM_SECRET": SECRET}),
        (["--secret", SECRET], {}),
    ]:
        result = run_cli("--port", port, "send", *args, "status", env=env)
        assert (result.returncode, result.stdout, result.stderr) == (0, "running\n", "")
    missing = run_cli("--port", port, "send", "--secret-file", str(tmp_path / "nope"), "status")
    assert missing.returncode == 2
    assert missing.stderr == (
        f"error: --secret-file: secret file not found ({tmp_path / 'nope'})\n"
    )


def test_the_client_reads_secret_file_from_the_daemon_s_overall_section(
    guarded: Any, tmp_path: Path
) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cryo.secret").write_text(SECRET)
    ini = tmp_path / "cryo.ini"
    overall = f"[Overall]\nhost = 127.0.0.1\nport = {guarded.port}\n"
    ini.write_text(overall + "secret_file = keys/cryo.secret\n")
    assert Client(config_file=str(ini)).send_message("status") == "running"
    by_cli = run_cli("send", "--config", str(ini), "status")
    assert (by_cli.returncode, by_cli.stdout) == (0, "running\n")
    ini.write_text(overall + "secret_file = gone\n")
    broken = run_cli("send", "--config", str(ini), "status")
    assert broken.returncode == 2
    assert broken.stderr == (
        f"error: secret_file of [Overall] in {ini}: secret file not found ({tmp_path / 'gone'})\n"
    )


def test_client_config_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.ini"
    with pytest.raises(configparser.NoSectionError, match=str(missing)):
        Client(config_file=str(missing))
    ini = tmp_path / "client.ini"
    ini.write_text("[Overall]\nhost = localhost\n")
    with pytest.raises(configparser.NoOptionError, match=f"'port'.*{ini}"):
        Client(config_file=str(ini))
    ini.write_text("[Overall]\nhost = localhost\nport = abc\n")
    with pytest.raises(ConfigValueError, match=r"\[Overall\] port = 'abc'") as raised:
        Client(config_file=str(ini))
    assert isinstance(raised.value, configparser.Error)
    assert isinstance(raised.value, ValueError)
    result = run_cli("send", "--config", str(ini), "status")
    assert result.returncode == 2
    assert result.stderr.startswith("error: [Overall] port = 'abc' in ")


def test_the_shell_says_connected_only_once_connected(daemon: Any) -> None:
    daemon.stop()
    shell = run_cli("--host", "127.0.0.1", "--port", str(daemon.port), "shell", stdin="status\n")
    assert shell.returncode == 2
    assert "connected" not in shell.stdout
    refused = f"error: cannot reach the daemon: connection refused (127.0.0.1:{daemon.port})"
    assert shell.stderr.startswith(refused)


def test_the_shell_probes_with_help_then_sends_each_line(recorder: tuple[Recorder, int]) -> None:
    server, port = recorder
    shell = run_cli("shell", "--host", "127.0.0.1", "--port", str(port), stdin="hold-not\nquit\n")
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.startswith(f"connected to 127.0.0.1:{port} (")
    assert server.seen[0] == "help"
    assert server.seen[1:] == ["hold-not", "quit"]


def test_a_persistent_client_outlives_the_daemon_closing_an_idle_connection(
    tmp_path: Path,
) -> None:
    server = Recorder(tmp_path / "idle.pid")
    server.connection_timeout = 0.2
    with (
        server.start_in_thread() as running,
        Client(host="127.0.0.1", port=running.address, persistent=True) as client,
    ):
        assert client.send_message("quit now").startswith("Error! ")
        assert client._sock is not None
        # Wait (with a deadline) until the daemon's idle sweep has closed our connection.
        readable, _, _ = select.select([client._sock], [], [], 30)
        assert readable, "the daemon never closed the idle connection"
        assert client.send_message("hold-not").startswith("Error! ")
    assert server.seen == ["quit now", "hold-not"]


def test_timeouts_must_be_positive_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--timeout", "0", "send", "status"]) == 2
    assert "give a number of seconds above 0 and at most 1e9, not 0" in capsys.readouterr().err
    assert main(["send", "--timeout", "soon", "status"]) == 2
    assert "not a number of seconds: 'soon'" in capsys.readouterr().err


def test_a_tls_ca_file_without_certificates_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    assert main(["--port", "1", "send", "--tls-ca", str(not_pem), "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no usable CA certificate in the --tls-ca file: ")
    assert err.endswith(f" ({not_pem})\n")


def test_an_empty_secret_file_means_none_for_daemon_and_client_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = tmp_path / "cryo.ini"
    ini.write_text("[Overall]\nhost = 127.0.0.1\nport = 0\nsecret_file =\n")
    with Recorder(tmp_path / "d.pid").start_in_thread() as running:
        server = Server(str(ini), str(tmp_path / "e.pid"))  # the same file, read by a daemon
        server.close()
        assert server.secret is None
        ini.write_text(f"[Overall]\nhost = 127.0.0.1\nport = {running.address}\nsecret_file =\n")
        assert Client(config_file=str(ini)).secret is None
        assert main(["send", "--config", str(ini), "ping"]) == 0
        assert capsys.readouterr().out == "pong\n"


def test_a_secret_file_naming_a_folder_is_one_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    ini = tmp_path / "cryo.ini"
    ini.write_text("[Overall]\nhost = 127.0.0.1\nport = 1\nsecret_file = keys\n")
    result = run_cli("send", "--config", str(ini), "status")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: secret_file of [Overall] in {ini}: cannot read the secret file: Is a directory"
        f" ({tmp_path / 'keys'})\n"
    )
    flag = run_cli("send", "--port", "1", "--secret-file", str(tmp_path / "keys"), "status")
    assert flag.returncode == 2
    assert flag.stderr == (
        f"error: --secret-file: cannot read the secret file: Is a directory ({tmp_path / 'keys'})\n"
    )


@pytest.mark.parametrize("port", ["0", "-1", "70000", "15o7"])
def test_ports_out_of_range_are_usage_errors_naming_the_range(
    port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", f"--port={port}", "status"]) == 2
    assert capsys.readouterr().err == (  # one line and a hint, as lab-db's
        f"error: argument --port: give a port from 1 to 65535, not {port!r}\n"
        "hint: python -m lab_utils.socket_comm send --help\n"
    )
    ini = tmp_path / "client.ini"
    ini.write_text(f"[Overall]\nhost = 127.0.0.1\nport = {port}\n")
    assert main(["send", "--config", str(ini), "status"]) == 2
    assert capsys.readouterr().err == (
        f"error: [Overall] port = {port!r} in {ini} is not a whole number from 1 to 65535\n"
    )
    if port.lstrip("-").isdigit():
        with pytest.raises(
            ValueError, match=f"port must be a whole number from 1 to 65535, not {port}"
        ):
            Client(port=int(port))


def test_an_endless_timeout_is_refused_before_it_overflows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for value in ("inf", "1e300", "nan"):
        assert main(["send", "--port", "1", "--timeout", value, "status"]) == 2
        err = capsys.readouterr().err
        assert f"give a number of seconds above 0 and at most 1e9, not {value}" in err
        assert "unexpected" not in err


def test_a_client_key_without_its_certificate_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "client.key"
    key.write_text("")
    assert main(["send", "--port", "1", "--tls-key", str(key), "status"]) == 2
    assert capsys.readouterr().err == (
        "error: --tls-key given without --tls-cert: give the certificate too\n"
    )
    with pytest.raises(ValueError, match="tls_key given without tls_cert"):
        Client(port=1, tls_key=str(key))


def test_config_files_that_cannot_be_read_or_parsed_are_named_plainly(tmp_path: Path) -> None:
    folder = run_cli("send", "--config", str(tmp_path), "status")
    assert (folder.returncode, folder.stderr) == (
        2,
        f"error: cannot read the config file {tmp_path}: Is a directory\n",
    )
    fleet = run_cli("fleet", str(tmp_path))
    assert (fleet.returncode, fleet.stderr) == (
        2,
        f"error: cannot read the config file {tmp_path}: Is a directory\n",
    )
    ini = tmp_path / "client.ini"
    ini.write_text("[Overall]\nhost = 127.0.0.1\nport = 1\n\n[Overall]\nport = 2\n")
    twice = run_cli("send", "--config", str(ini), "status")
    assert (twice.returncode, twice.stderr) == (
        2,
        f"error: While reading from '{ini}' [line  5]: section 'Overall' already exists\n",
    )


def test_an_empty_host_in_the_client_config_or_flag_is_an_error_naming_it(tmp_path: Path) -> None:
    ini = tmp_path / "client.ini"
    ini.write_text("[Overall]\nhost =\nport = 1507\n")
    with pytest.raises(ConfigValueError) as caught:
        Client(config_file=str(ini))
    assert str(caught.value) == f"[Overall] host = '' in {ini} is not a host name or address"
    result = run_cli("send", "--config", str(ini), "status")
    assert (result.returncode, result.stderr) == (2, f"error: {caught.value}\n")
    flag = run_cli("send", "--host", "", "--port", "1507", "status")
    assert (flag.returncode, flag.stderr) == (
        2,
        "error: argument --host: give a host name or address, not an empty one\n"
        "hint: python -m lab_utils.socket_comm send --help\n",
    )


def test_an_empty_secret_is_refused_not_authentication_turned_off(tmp_path: Path) -> None:
    for empty in ("", b""):
        with pytest.raises(ValueError, match="the shared secret is empty"):
            Server(pid_file_name=str(tmp_path / "d.pid"), port=0, secret=empty)
        with pytest.raises(ValueError, match="the shared secret is empty"):
            Client(port=1, secret=empty)
    assert not (tmp_path / "d.pid").exists()
    result = run_cli("send", "--port", "1", "--secret", "", "status")
    assert (result.returncode, result.stderr) == (
        2,
        "error: --secret is empty: give the secret, or leave the option out\n",
    )
