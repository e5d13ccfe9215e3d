"""``fleet FILE``: every daemon of a lab server asked at once, shown up, down or in error."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab_utils.socket_comm import ConfigValueError, Server, command
from lab_utils.socket_comm.__main__ import main
from lab_utils.socket_comm.fleet import read_fleet

SECRET = "fleet secret"


def fleet_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``python -m lab_utils.socket_comm fleet ...`` in a process of its own."""
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "lab_utils.socket_comm", "fleet", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )  # fmt: skip


class Rendezvous(Server):
    """``meet`` replies only once the other daemon of the pair has been asked too."""

    def __init__(self, pid: Path, barrier: threading.Barrier) -> None:
        super().__init__(pid_file_name=str(pid), host="127.0.0.1", port=0)
        self.barrier = barrier

    @command
    def meet(self) -> str:
        """Wait for the other daemon's request."""
        self.barrier.wait(20)
        return "met"


def write_fleet(path: Path, daemons: dict[str, dict[str, object]]) -> Path:
    sections = []
    for name, options in daemons.items():
        lines = [f"[{name}]", *(f"{key} = {value}" for key, value in options.items())]
        sections.append("\n".join(lines))
    path.write_text("\n\n".join(sections) + "\n")
    return path


@pytest.fixture
def lab(start_daemon: Callable[..., Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A lab server: a cryo daemon, one with a secret, an old-style one without `status`."""
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    bare = Server(pid_file_name=str(tmp_path / "bare.pid"), host="127.0.0.1", port=0)
    with bare.start_in_thread() as running:
        yield {
            "cryo": start_daemon(),
            "guarded": start_daemon(secret=SECRET),
            "bare_port": running.address,
            "secret_file": secret_file,
        }


def test_the_fleet_table_shows_each_daemon_up_down_or_in_error(
    lab: dict[str, Any], tmp_path: Path, free_port: Callable[[], int]
) -> None:
    cryo, guarded = lab["cryo"].port, lab["guarded"].port
    fleet = write_fleet(
        tmp_path / "fleet.ini",
        {
            "cryostat": {"host": "127.0.0.1", "port": cryo},
            "pressure": {"host": "127.0.0.1", "port": free_port()},
            "magnet": {"host": "127.0.0.1", "port": guarded, "secret_file": "secret"},
            "magnet-nokey": {"host": "127.0.0.1", "port": guarded},
            "valves": {"host": "127.0.0.1", "port": cryo, "command": "fail"},
            "legacy-style": {"host": "127.0.0.1", "port": lab["bare_port"]},
        },
    )
    proc = fleet_cli(str(fleet))
    out, err = proc.communicate(timeout=60)
    print(out)  # the table, for the record of a test run (pytest -s)
    assert proc.returncode == 1, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"{fleet}: 3/6 up at ")
    assert lines[1].split() == ["NAME", "ADDRESS", "STATE", "LATENCY", "REPLY"]
    rows = {line.split()[0]: line for line in lines[2:]}
    names = ["cryostat", "pressure", "magnet", "magnet-nokey", "valves", "legacy-style"]
    assert list(rows) == names
    assert rows["cryostat"].split()[1:3] == [f"127.0.0.1:{cryo}", "up"]
    assert rows["cryostat"].endswith(" ms  running")
    assert rows["pressure"].split()[2:4] == ["down", "-"]
    assert rows["pressure"].endswith("cannot reach the daemon: connection refused")
    assert rows["magnet"].split()[2] == "up"
    assert rows["magnet"].endswith("  running")
    assert rows["magnet-nokey"].split()[2] == "error"
    assert "authentication required" in rows["magnet-nokey"]
    assert rows["valves"].split()[2] == "error"
    assert rows["valves"].endswith("Unknown exception! Check daemon log!")
    assert rows["legacy-style"].split()[2] == "up"
    assert rows["legacy-style"].endswith("answers, but has no 'status' command")


def test_exit_status_is_zero_only_when_all_are_up(
    lab: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = write_fleet(
        tmp_path / "up.ini",
        {
            "cryostat": {"host": "127.0.0.1", "port": lab["cryo"].port},
            "magnet": {"port": lab["guarded"].port, "secret_file": lab["secret_file"]},
            "echo": {"port": lab["cryo"].port, "command": "echo --text {two words}"},
        },
    )
    assert main(["fleet", str(fleet)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(" ms  two words")
    lab["cryo"].stop()
    assert main(["fleet", str(fleet)]) == 1


def test_json_gives_one_document_for_scripts(
    lab: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    free_port: Callable[[], int],
) -> None:
    fleet = write_fleet(
        tmp_path / "fleet.ini",
        {
            "cryostat": {"host": "127.0.0.1", "port": lab["cryo"].port},
            "pressure": {"host": "127.0.0.1", "port": free_port()},
        },
    )
    assert main(["fleet", "--json", str(fleet)]) == 1
    document = json.loads(capsys.readouterr().out)
    assert (document["up"], document["total"]) == (1, 2)
    cryostat, pressure = document["daemons"]
    assert cryostat["name"] == "cryostat"
    assert cryostat["address"] == f"127.0.0.1:{lab['cryo'].port}"
    assert (cryostat["state"], cryostat["reply"]) == ("up", "running")
    assert cryostat["latency_ms"] > 0
    assert (pressure["state"], pressure["latency_ms"]) == ("down", None)


def test_all_daemons_are_asked_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Each daemon answers only once the other has been asked: asked one after the other,
    # the first would wait for its partner until the barrier breaks.
    barrier = threading.Barrier(2)
    left = Rendezvous(tmp_path / "left.pid", barrier)
    right = Rendezvous(tmp_path / "right.pid", barrier)
    with left.start_in_thread() as left_running, right.start_in_thread() as right_running:
        fleet = write_fleet(
            tmp_path / "pair.ini",
            {
                "left": {"host": "127.0.0.1", "port": left_running.address, "command": "meet"},
                "right": {"host": "127.0.0.1", "port": right_running.address, "command": "meet"},
            },
        )
        assert main(["fleet", "--timeout", "30", str(fleet)]) == 0
    assert [line.split()[-1] for line in capsys.readouterr().out.splitlines()[2:]] == ["met"] * 2


def test_a_daemon_that_accepts_but_never_answers_is_in_error_not_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    barrier = threading.Barrier(2)  # nobody else comes: `meet` hangs until we abort it
    alone = Rendezvous(tmp_path / "alone.pid", barrier)
    with alone.start_in_thread() as running:
        port = running.address
        fleet = write_fleet(
            tmp_path / "hung.ini", {"hung": {"host": "127.0.0.1", "port": port, "command": "meet"}}
        )
        try:
            assert main(["fleet", "--timeout", "0.5", str(fleet)]) == 1
        finally:
            barrier.abort()
    row = capsys.readouterr().out.splitlines()[2]
    assert row.split()[2] == "error"
    assert row.endswith("connected, but no reply within 0.5 s")


def test_watch_asks_again_until_interrupted(lab: dict[str, Any], tmp_path: Path) -> None:
    fleet = write_fleet(
        tmp_path / "fleet.ini", {"cryostat": {"host": "127.0.0.1", "port": lab["cryo"].port}}
    )
    proc = fleet_cli("--watch", "0.1", str(fleet))
    assert proc.stdout is not None
    headers = 0
    for line in proc.stdout:  # ends only if the process dies: the test's timeout guards it
        headers += line.startswith(f"{fleet}: 1/1 up at ")
        if headers == 3:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert headers == 3
    assert proc.returncode == 0, err


def test_ctrl_c_ends_watch_at_once_while_a_daemon_keeps_a_probe_waiting(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    # A daemon that accepts and never answers: its probe waits out a long timeout. Ctrl+C
    # used to wait for it (the thread pool joined every probe in flight, twice).
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        mute.settimeout(60)
        fleet = write_fleet(
            tmp_path / "fleet.ini",
            {
                "cryostat": {"host": "127.0.0.1", "port": lab["cryo"].port},
                "mute": {"host": "127.0.0.1", "port": mute.getsockname()[1], "timeout": 600},
            },
        )
        proc = fleet_cli("--watch", "1", "--json", str(fleet))
        held, _ = mute.accept()  # the probe is connected and waits for its reply
        with held:
            proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=60)  # generous, and far below 600 s
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                pytest.fail("fleet --watch still ran 60 s after SIGINT")
    # No round ended: no table, and the status of "not all seen up".
    assert (proc.returncode, out, err) == (1, "", "")


def test_ctrl_c_between_rounds_exits_with_the_last_round_s_status(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    fleet = write_fleet(
        tmp_path / "fleet.ini",
        {"cryostat": {"host": "127.0.0.1", "port": lab["cryo"].port}, "guarded": {
            "host": "127.0.0.1", "port": lab["guarded"].port, "command": "ping",
            "secret_file": lab["secret_file"]}},
    )  # fmt: skip
    proc = fleet_cli("--watch", "30", "--json", str(fleet))
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # one round shown; the next is 30 s away
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert (first["up"], first["total"]) == (2, 2)
    assert (proc.returncode, err) == (0, "")


def test_fleet_file_problems_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.ini"
    assert main(["fleet", str(fleet)]) == 2
    assert capsys.readouterr().err == f"error: config file not found: {fleet}\n"
    fleet.write_text("[cryostat]\nhost = localhost\n")
    assert main(["fleet", str(fleet)]) == 2
    assert capsys.readouterr().err == (
        f"error: No option 'port' in section: 'cryostat' of {fleet}\n"
    )
    fleet.write_text("[cryostat]\nport = 15o7\n")
    assert main(["fleet", str(fleet)]) == 2
    assert capsys.readouterr().err == (
        f"error: [cryostat] port = '15o7' in {fleet} is not a whole number from 1 to 65535\n"
    )
    fleet.write_text("# nothing yet\n")
    assert main(["fleet", str(fleet)]) == 2
    assert "no daemon in" in capsys.readouterr().err
    assert main(["--port", "1507", "fleet", str(fleet)]) == 2
    assert "--port does not apply" in capsys.readouterr().err
    for flag in ("--tls-ca", "--tls-cert", "--tls-key"):  # each daemon's TLS is in FILE
        assert main([flag, str(fleet), "fleet", str(fleet)]) == 2
        assert f"{flag} does not apply" in capsys.readouterr().err


def test_unknown_options_are_warned_about_with_the_closest_name(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.ini"
    fleet.write_text("[DEFAULT]\nsecret_fiel = s\n\n[cryostat]\nprot = 1\nport = 1507\n")
    members, warnings = read_fleet(fleet)
    assert [m.name for m in members] == ["cryostat"]
    assert members[0].secret_file is None
    assert warnings == [
        f"unknown option 'secret_fiel' in [DEFAULT] of {fleet}; did you mean 'secret_file'?",
        f"unknown option 'prot' in [cryostat] of {fleet}; did you mean 'port'?",
    ]


class Cryostat(Server):
    @command
    def status(self) -> str:
        """Show the state."""
        return "cold"


def test_tls_daemons_with_their_ca_and_without(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "lab-ca.pem"))
    server_pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    daemon = Cryostat(
        pid_file_name=str(tmp_path / "tls.pid"), host="127.0.0.1", port=0, tls_cert=str(server_pem)
    )
    with daemon.start_in_thread() as running:
        port = running.address
        fleet = write_fleet(
            tmp_path / "tls.ini",
            {
                "trusted": {"host": "127.0.0.1", "port": port, "tls_ca": "lab-ca.pem"},
                "no-ca-file": {"host": "127.0.0.1", "port": port, "tls_ca": "gone.pem"},
                "system-cas": {"host": "127.0.0.1", "port": port, "tls": "yes"},
                "plain": {"host": "127.0.0.1", "port": port},
            },
        )
        assert main(["fleet", str(fleet)]) == 1
    out = capsys.readouterr().out
    print(out)
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert rows["trusted"].split()[2] == "up"
    assert rows["trusted"].endswith(" ms  cold")
    assert rows["no-ca-file"].split()[2] == "error"
    assert rows["no-ca-file"].endswith(f"TLS file not found (tls_ca) ({tmp_path / 'gone.pem'})")
    assert rows["system-cas"].split()[2] == "error"
    assert "TLS: the daemon's certificate is not trusted" in rows["system-cas"]
    assert rows["plain"].split()[2] == "error"  # plain text to a TLS daemon: reset


def test_states_are_coloured_only_when_asked_and_never_with_no_color(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    fleet = write_fleet(
        tmp_path / "fleet.ini", {"cryostat": {"host": "127.0.0.1", "port": lab["cryo"].port}}
    )
    plain = fleet_cli(str(fleet))  # a pipe, not a terminal
    forced = fleet_cli(str(fleet), env={"FORCE_COLOR": "1"})
    refused = fleet_cli(str(fleet), env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    outputs = [proc.communicate(timeout=60)[0] for proc in (plain, forced, refused)]
    assert "\x1b[" not in outputs[0]
    assert "\x1b[32mup" in outputs[1]
    assert "\x1b[" not in outputs[2]
    assert main(["fleet", "--watch", "0", str(fleet)]) == 2


def test_fleet_values_are_read_as_the_daemon_s_are(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.ini"
    for line, accepted in [
        ("timeout = 0", "a number of seconds above 0 and at most 1e9"),
        ("timeout = soon", "a number of seconds above 0 and at most 1e9"),
        ("timeout = inf", "a number of seconds above 0 and at most 1e9"),
        ("port = 0", "a whole number from 1 to 65535"),
        ("port = 70000", "a whole number from 1 to 65535"),
        ("port = -1", "a whole number from 1 to 65535"),
        ("tls = maybe", "one of 1, yes, true, on, 0, no, false, off"),
        ("protocol = udp", "one of auto, framed, legacy"),
    ]:
        option, value = line.split(" = ")
        fleet.write_text(f"[cryostat]\n{'' if option == 'port' else 'port = 1507'}\n{line}\n")
        with pytest.raises(ConfigValueError) as caught:
            read_fleet(fleet)
        assert str(caught.value) == f"[cryostat] {option} = {value!r} in {fleet} is not {accepted}"


def test_an_empty_secret_file_names_none_and_a_folder_is_named(
    lab: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keys").mkdir()
    fleet = write_fleet(
        tmp_path / "fleet.ini",
        {
            "cryostat": {"host": "127.0.0.1", "port": lab["cryo"].port, "secret_file": ""},
            "magnet": {"host": "127.0.0.1", "port": lab["guarded"].port, "secret_file": "keys"},
        },
    )
    members, _ = read_fleet(fleet)
    assert members[0].secret_file is None  # as the daemon and the client read it
    assert main(["fleet", str(fleet)]) == 1
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["cryostat"].split()[2] == "up"
    assert rows["magnet"].split()[2] == "error"
    assert rows["magnet"].endswith(
        f"secret_file: cannot read the secret file: Is a directory ({tmp_path / 'keys'})"
    )
