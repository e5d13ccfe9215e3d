"""The three command lines behave alike, from the installed wheels.

Each runs as its console script (`lab-db`, `lab-comm`, `lab-log`) and as
`python -m lab_utils.<module>`; both forms must keep the manners of the suite: `--version`
prints `<distribution> <version>`; exit status 2 for usage, configuration and connection
problems; such problems are one line `error: ...` on stderr naming where, with no
traceback unless LAB_UTILS_DEBUG=1; commands that print data accept `--json`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
CLIS = {
    "lab-db": "lab_utils.database",
    "lab-comm": "lab_utils.socket_comm",
    "lab-log": "lab_utils.custom_logging",
}
FORMS = [
    pytest.param(dist, form, id=f"{dist}-{form}")
    for dist in CLIS
    for form in ("console-script", "python-m")
]


def _command(dist: str, form: str) -> list[str]:
    if form == "console-script":
        return [str(BIN / dist)]
    return [sys.executable, "-m", CLIS[dist]]


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "LAB_UTILS_DEBUG"}
    return subprocess.run(
        args, capture_output=True, text=True, timeout=60, check=False,
        env={**clean, **(env or {})}, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _busy_port() -> Iterator[int]:
    """A loopback port held by a listening socket for the duration."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _database_ini(folder: Path, port: int) -> Path:
    ini = folder / "database.ini"
    ini.write_text(
        "[Overall]\nhost = 127.0.0.1\n"
        f"port = {port}\ndatabase = lab\nuser = lab\npassfile = {folder / 'pgpass'}\n"
    )
    return ini


def _assert_one_error_line(result: subprocess.CompletedProcess[str], *where: str) -> None:
    """Exit status 2; stderr is one line `error: ...` naming `where`, maybe a `hint: ...`."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert lines, "nothing on stderr"
    assert lines[0].startswith("error: "), result.stderr
    # Reported once: no log record before it, nothing after it but an optional hint.
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), (
        f"expected one error line (and a hint), got:\n{result.stderr}"
    )
    for text in where:
        assert text in lines[0], (text, lines[0])


@pytest.mark.parametrize(("dist", "form"), FORMS)
def test_version_prints_distribution_and_version(dist: str, form: str) -> None:
    result = _run([*_command(dist, form), "--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{dist} {importlib.metadata.version(dist)}"


@pytest.mark.parametrize(("dist", "form"), FORMS)
def test_an_unknown_command_is_a_usage_error(dist: str, form: str) -> None:
    result = _run([*_command(dist, form), "no-such-command"])
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert any("error: " in line for line in result.stderr.splitlines()), result.stderr


def _missing_config_args(dist: str, missing: Path) -> list[str]:
    return {
        "lab-db": ["--config", str(missing), "check-table", "readings"],
        "lab-comm": ["--config", str(missing), "send", "status"],
        "lab-log": ["listen", "--port", "0", "--config", str(missing)],
    }[dist]


@pytest.mark.parametrize(("dist", "form"), FORMS)
def test_a_missing_config_file_is_one_error_line_naming_it(
    dist: str, form: str, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such.ini"
    result = _run([*_command(dist, form), *_missing_config_args(dist, missing)])
    _assert_one_error_line(result, str(missing))


@pytest.mark.parametrize(("dist", "form"), FORMS)
def test_lab_utils_debug_shows_the_traceback(dist: str, form: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such.ini"
    result = _run(
        [*_command(dist, form), *_missing_config_args(dist, missing)], env={"LAB_UTILS_DEBUG": "1"}
    )
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr


@contextlib.contextmanager
def _connection_case(dist: str, folder: Path) -> Iterator[tuple[str, list[str]]]:
    """An address with a connection problem, and the arguments that meet it there."""
    if dist == "lab-log":
        with _busy_port() as port:  # the listener cannot bind: the port is taken
            yield f"127.0.0.1:{port}", ["listen", "--host", "127.0.0.1", "--port", str(port)]
        return
    port = _closed_port()  # nobody answers there
    if dist == "lab-db":
        ini = _database_ini(folder, port)
        yield f"127.0.0.1:{port}", ["--config", str(ini), "check-table", "readings"]
    else:
        yield f"127.0.0.1:{port}", ["--host", "127.0.0.1", "--port", str(port), "send", "status"]


@pytest.mark.parametrize(("dist", "form"), FORMS)
def test_a_connection_problem_is_one_error_line_naming_the_address(
    dist: str, form: str, tmp_path: Path
) -> None:
    with _connection_case(dist, tmp_path) as (address, args):
        result = _run([*_command(dist, form), *args])
    _assert_one_error_line(result, address)


@pytest.mark.parametrize("form", ["console-script", "python-m"])
@pytest.mark.parametrize("dist", ["lab-db", "lab-comm"])
def test_global_options_work_after_the_command_too(dist: str, form: str, tmp_path: Path) -> None:
    port = _closed_port()
    if dist == "lab-db":
        ini = _database_ini(tmp_path, port)
        args = ["check-table", "readings", "--config", str(ini)]
    else:  # `send --port 1508 status`: the daemon's own words and options come last
        args = ["send", "--host", "127.0.0.1", "--port", str(port), "status"]
    _assert_one_error_line(_run([*_command(dist, form), *args]), f"127.0.0.1:{port}")


def test_lab_db_takes_database_url_in_place_of_config(database_ini: Path) -> None:
    port = re.search(r"port = (\d+)", database_ini.read_text())[1]  # type: ignore[index]
    result = _run(
        [str(BIN / "lab-db"), "latest", "cryostat", "--json"],
        env={"DATABASE_URL": f"postgresql://lab@127.0.0.1:{port}/lab"},
    )
    assert result.returncode == 0, result.stderr
    assert "77.5" in _strings(json.loads(result.stdout))


# --json where the command lines print data -------------------------------------------


def _strings(document: object) -> set[str]:
    """Every key and scalar of a JSON document, as text."""
    if isinstance(document, dict):
        return {str(k) for k in document} | {s for v in document.values() for s in _strings(v)}
    if isinstance(document, list):
        return {s for item in document for s in _strings(item)}
    return {str(document)}


@pytest.fixture(scope="module")
def database_ini(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An embedded PostgreSQL with table `cryostat` (two readings), and an INI file for it."""
    from lab_utils.database import DataType, EmbeddedPostgres

    with EmbeddedPostgres() as server:
        db = server.database("lab")
        db.create_timescale_db("cryostat")
        db.new_column("cryostat", "temperature_k", DataType.double)
        db.new_entry("cryostat", ["temperature_k"], [4.25])
        db.new_entry("cryostat", ["temperature_k"], [77.5])
        db.close()
        yield _database_ini(tmp_path_factory.mktemp("db"), server.port)


@pytest.mark.parametrize("form", ["console-script", "python-m"])
def test_lab_db_latest_prints_headers_and_one_json_document(form: str, database_ini: Path) -> None:
    command = [*_command("lab-db", form), "--config", str(database_ini), "latest", "cryostat"]
    table = _run(command)
    assert table.returncode == 0, table.stderr
    assert "temperature_k" in table.stdout.splitlines()[0]  # the header line

    as_json = _run([*command, "--json"])
    assert as_json.returncode == 0, as_json.stderr
    found = _strings(json.loads(as_json.stdout))
    assert {"temperature_k", "4.25", "77.5"} <= found


@pytest.mark.parametrize("form", ["console-script", "python-m"])
def test_lab_comm_fleet_json_reports_a_daemon_that_is_down(form: str, tmp_path: Path) -> None:
    port = _closed_port()
    fleet = tmp_path / "fleet.ini"
    fleet.write_text(f"[cryostat]\nhost = 127.0.0.1\nport = {port}\n")
    result = _run([*_command("lab-comm", form), "fleet", str(fleet), "--json"])
    # The survey ran and the answer is "not all up": status 1, not a usage error.
    assert result.returncode == 1, result.stderr
    found = _strings(json.loads(result.stdout))
    assert "cryostat" in found
    assert any(str(port) in text for text in found)


def _lines(stream: queue.Queue[str], until: Callable[[str], bool], timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = stream.get(timeout=0.1)
        except queue.Empty:
            continue
        seen.append(line)
        if until(line):
            return seen
    raise AssertionError(f"no such line within {timeout} s; saw {seen}")


def _wait_listening(port: int, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@pytest.mark.parametrize("form", ["console-script", "python-m"])
def test_lab_log_listen_json_prints_one_object_per_alarm(form: str) -> None:
    from lab_utils.custom_logging import NonPickledSocketHandler
    from lab_utils.custom_logging.formatters import ALARM_FORMAT, DATE_FORMAT

    port = _closed_port()
    command = [*_command("lab-log", form), "listen", "--host", "127.0.0.1", "--port", str(port)]
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(
        [*command, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    ) as process:  # fmt: skip
        stdout = process.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: [lines.put(line) for line in stdout])
        reader.start()
        try:
            _wait_listening(port, process)
            handler = NonPickledSocketHandler("127.0.0.1", port)
            handler.setFormatter(logging.Formatter(ALARM_FORMAT, DATE_FORMAT))
            logger = logging.getLogger("Cryo Monitor")
            logger.propagate = False
            logger.addHandler(handler)
            try:
                logger.error("cryostat warm: 12.5 K")
            finally:
                handler.close()
                logger.removeHandler(handler)
            seen = _lines(lines, lambda line: "cryostat warm" in line, timeout=30)
        finally:
            process.terminate()
            process.wait(timeout=30)
            reader.join(timeout=30)  # stdout reaches its end once the listener is gone
    # Every line on stdout is a JSON object of its own; the alarm is one of them.
    records = [json.loads(line) for line in seen if line.strip()]
    assert all(isinstance(record, dict) for record in records)
    assert "cryostat warm: 12.5 K" in _strings(records[-1])
