"""``python -m lab_utils.database`` (``lab-db``) in a subprocess against the test server."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from lab_utils.database import Database, __version__


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env.pop("LAB_UTILS_DEBUG", None)
    return {**env, **extra}


def _run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab_utils.database", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env or _env(),
    )


def _url(db: Database) -> str:
    return f"postgresql://{db.user}@{db.host}:{db.port}/{db.database}"


@pytest.fixture
def config(db: Database, tmp_path: Path) -> Path:
    """An [Overall] file for the test's database."""
    path = tmp_path / "db.ini"
    path.write_text(
        f"[Overall]\nhost = {db.host}\nport = {db.port}\ndatabase = {db.database}\n"
        f"user = {db.user}\npassfile = ~/.pgpass\n"
    )
    return path


@pytest.fixture
def url_env(db: Database) -> dict[str, str]:
    """An environment whose DATABASE_URL names the test's database."""
    return _env(DATABASE_URL=_url(db))


@pytest.fixture
def gauges(db: Database) -> Database:
    """The test's database with a table ``gauges`` (p1 >= 0 double, label text)."""
    db.create_timescale_db("gauges")
    from lab_utils.database import Constraint, DataType

    db.new_column("gauges", "p1", DataType.double, [Constraint.positive])
    db.new_column("gauges", "label", DataType.string)
    return db


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_cli_table_column_insert_import_latest(db: Database, config: Path, tmp_path: Path) -> None:
    assert _run("--config", str(config), "check-table", "gauges").returncode == 1
    assert _run("--config", str(config), "create-table", "gauges").returncode == 0
    made = _run("--config", str(config), "create-column", "gauges", "p1", "double", "--positive")
    assert made.returncode == 0
    assert _run("--config", str(config), "check-table", "gauges").returncode == 0
    assert _run("--config", str(config), "insert", "gauges", "p1=0.5").returncode == 0
    csv_file = tmp_path / "data.csv"
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    lines = ["time,p1"] + [
        f"{(start + dt.timedelta(seconds=n)).isoformat()},{n}" for n in range(12_000)
    ]
    csv_file.write_text("\n".join(lines) + "\n")
    imported = _run("--config", str(config), "import-csv", "gauges", str(csv_file))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "12000 rows imported into gauges\n"
    assert "\r" not in imported.stderr  # stderr is a pipe here: no bar redrawn in place
    latest = _run("--config", str(config), "latest", "gauges", "--rows", "1")
    assert latest.stdout.splitlines()[-1].endswith("0.5")
    refused = _run("--config", str(config), "insert", "gauges", "p1=-1")
    assert refused.returncode == 2
    assert "check constraint" in refused.stderr


def test_version_names_the_distribution() -> None:
    shown = _run("--version")
    assert shown.returncode == 0
    assert shown.stdout == f"lab-db {__version__}\n"


def test_database_url_and_pg_variables_stand_in_for_config(gauges: Database) -> None:
    by_url = _run("check-table", "gauges", env=_env(DATABASE_URL=_url(gauges)))
    assert (by_url.returncode, by_url.stdout) == (0, "gauges: exists\n")
    by_pg = _run(
        "check-table",
        "gauges",
        env=_env(
            PGHOST=gauges.host,
            PGPORT=str(gauges.port),
            PGUSER=gauges.user,
            PGDATABASE=gauges.database,
        ),
    )
    assert (by_pg.returncode, by_pg.stdout) == (0, "gauges: exists\n")


def test_global_options_go_before_or_after_the_command(gauges: Database, config: Path) -> None:
    before = _run("--config", str(config), "check-table", "gauges")
    after = _run("check-table", "gauges", "--config", str(config))
    assert before.returncode == after.returncode == 0


@pytest.mark.parametrize(
    ("setup", "args", "message", "hint"),
    [
        (
            "none",
            ["--config", "{tmp}/missing.ini", "latest", "gauges"],
            "error: config file {tmp}/missing.ini not found",
            "DATABASE_URL",
        ),
        (
            "bad-port",
            ["--config", "{tmp}/bad.ini", "latest", "gauges"],
            "error: port 'abc' is not a port number (1-65535) (port in [Overall] of {tmp}/bad.ini)",
            None,
        ),
        (
            "url",
            ["latest", "nowhere"],
            "error: table 'nowhere' does not exist",
            "hint: create it with: lab-db create-table nowhere",
        ),
        ("refused", ["latest", "gauges"], "error: cannot connect: connection to server", "PGHOST"),
    ],
    ids=["missing-config-file", "bad-port", "missing-table", "server-down"],
)
def test_errors_are_one_line_exit_2_without_traceback(
    gauges: Database, tmp_path: Path, setup: str, args: list[str], message: str, hint: str | None
) -> None:
    (tmp_path / "bad.ini").write_text(
        "[Overall]\nhost = 127.0.0.1\nport = abc\ndatabase = x\nuser = x\npassfile = ~/.pgpass\n"
    )
    env = _env()
    if setup == "url":
        env = _env(DATABASE_URL=_url(gauges))
    elif setup == "refused":
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        env = _env(DATABASE_URL=f"postgresql://lab@127.0.0.1:{free}/lab")
    failed = _run(*(a.format(tmp=tmp_path) for a in args), env=env)
    assert failed.returncode == 2
    assert "Traceback" not in failed.stderr
    errors = _error_lines(failed.stderr)
    assert len(errors) == 1, failed.stderr  # reported once: no log record of the same
    assert errors[0].startswith(message.format(tmp=tmp_path))
    if hint:
        assert hint in failed.stderr
    debugged = _run(*(a.format(tmp=tmp_path) for a in args), env={**env, "LAB_UTILS_DEBUG": "1"})
    assert "Traceback" in debugged.stderr
    assert debugged.returncode == 2


def test_missing_column_hint_names_the_command(gauges: Database, url_env: dict[str, str]) -> None:
    failed = _run("insert", "gauges", "p9=1", env=url_env)
    assert failed.returncode == 2
    assert "hint: add it with: lab-db create-column gauges p9 TYPE" in failed.stderr


def test_unknown_config_option_is_a_warning_with_the_closest_name(
    gauges: Database, config: Path
) -> None:
    config.write_text(config.read_text() + "prot = 1\n")
    ran = _run("--config", str(config), "check-table", "gauges")
    assert ran.returncode == 0
    assert f"warning: unknown option 'prot' in [Overall] of {config}; did you mean 'port'?" in (
        ran.stderr
    )


def test_insert_refuses_a_column_without_a_value(gauges: Database, url_env: dict[str, str]) -> None:
    refused = _run("insert", "gauges", "p1", env=url_env)
    assert refused.returncode == 2
    assert _error_lines(refused.stderr) == [
        "error: argument COLUMN=VALUE: 'p1' is not COLUMN=VALUE"
    ]
    assert gauges.fetch_latest("gauges") == []


def test_insert_converts_text_by_column_type(gauges: Database, url_env: dict[str, str]) -> None:
    assert _run("insert", "gauges", "p1=2.5", "label=cold", env=url_env).returncode == 0
    bad = _run("insert", "gauges", "p1=warm", env=url_env)
    assert bad.returncode == 2
    assert _error_lines(bad.stderr) == ["error: column p1: 'warm' is not a number (table gauges)"]
    assert [row[1:] for row in gauges.fetch_latest("gauges", ["p1", "label"])] == [(2.5, "cold")]


def test_insert_refuses_a_column_type_lab_db_does_not_read(
    gauges: Database, url_env: dict[str, str]
) -> None:
    with gauges.transaction("a jsonb column") as cursor:
        cursor.execute("ALTER TABLE gauges ADD COLUMN extra jsonb")
    refused = _run("insert", "gauges", "extra={}", env=url_env)
    assert refused.returncode == 2
    assert _error_lines(refused.stderr)[0].startswith(
        "error: column extra: columns of type 'jsonb' are not supported"
    )
    assert gauges.fetch_latest("gauges") == []


def test_import_csv_names_the_line_of_a_bad_field_and_imports_nothing(
    gauges: Database, url_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("time,p1\n2026-01-01T00:00:00Z,1\n2026-01-01T00:00:01Z,oops\n")
    failed = _run("import-csv", "gauges", str(data), env=url_env)
    assert failed.returncode == 2
    assert _error_lines(failed.stderr) == [
        f"error: line 3, column p1: 'oops' is not a number; nothing was imported ({data})"
    ]
    data.write_text("time,p1\n2026-01-01T00:00:00Z,1\n2026-01-01T00:00:01Z,-4\n")
    refused = _run("import-csv", "gauges", str(data), env=url_env)
    assert refused.returncode == 2
    assert _error_lines(refused.stderr)[0].startswith("error: line 3: new row for relation")
    assert gauges.fetch_latest("gauges") == []


def test_import_csv_takes_a_delimiter_and_hints_at_it(
    gauges: Database, url_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("time;p1;label\n2026-01-01T00:00:00+00:00;1.5;a,b\n")
    wrong = _run("import-csv", "gauges", str(data), env=url_env)
    assert wrong.returncode == 2
    assert "add --delimiter ';'" in wrong.stderr
    right = _run("import-csv", "gauges", str(data), "--delimiter", ";", env=url_env)
    assert right.returncode == 0, right.stderr
    assert [row[1:] for row in gauges.fetch_latest("gauges", ["p1", "label"])] == [(1.5, "a,b")]


def test_latest_prints_headers_and_json(gauges: Database, url_env: dict[str, str]) -> None:
    when = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
    gauges.insert_many("gauges", ["time", "p1", "label"], [(when, 1.25, "x"), (when, None, "y")])
    table = _run("latest", "gauges", "--rows", "1", env=url_env)
    assert table.stdout.split("\n")[0].split() == ["time", "p1", "label"]
    shown = _run("latest", "gauges", "p1", "--json", env=url_env)
    rows = json.loads(shown.stdout)
    assert sorted(r["p1"] is None for r in rows) == [False, True]
    assert {r["time"] for r in rows} == {when.isoformat()}
    assert all(set(r) == {"time", "p1"} for r in rows)


def test_import_progress_on_a_terminal_shows_rate_and_eta(
    gauges: Database, url_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    data.write_text(
        "time,p1\n"
        + "".join(f"{(start + dt.timedelta(seconds=n)).isoformat()},{n}\n" for n in range(5000))
    )
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "lab_utils.database", "import-csv", "gauges", str(data)],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=url_env,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert out == b"5000 rows imported into gauges\n"
    final = seen.decode().replace("\r\n", "\n").split("\r")[-1]
    assert "5000/5000 rows 100%" in final
    assert "rows/s" in final
    assert " in " in final  # the elapsed time once done (the ETA while running)


def test_serve_prints_dsn_and_ini_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    serving = subprocess.Popen(
        [sys.executable, "-m", "lab_utils.database", "serve", "--database", "bench"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert serving.stdout is not None
    lines = []
    while not lines or not lines[-1].startswith("passfile"):
        line = serving.stdout.readline()
        assert line, "serve ended before printing its [Overall] block"
        lines.append(line.rstrip("\n"))
    url = next(line.split("=", 1)[1] for line in lines if line.startswith("DATABASE_URL="))
    ini = tmp_path / "served.ini"
    ini.write_text("\n".join(lines[lines.index("[Overall]") :]) + "\n")
    assert _run("--config", str(ini), "create-table", "t").returncode == 0
    assert _run("check-table", "t", env=_env(DATABASE_URL=url)).stdout == "t: exists\n"
    port = int(next(line.split(" = ")[1] for line in lines if line.startswith("port = ")))
    serving.send_signal(signal.SIGINT)
    rest, errors = serving.communicate(timeout=60)
    assert serving.returncode == 0, errors
    assert rest == "stopped\n"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
