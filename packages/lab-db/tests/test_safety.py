"""No user string reaches SQL text; failures leave the connection usable."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import psycopg2
import pytest

from lab_utils.database import Database, DataType

HOSTILE = [
    'quo"te',
    "semi;colon",
    "x; DROP TABLE canary; --",
    "dash--dash",
    "Mixed Case",
    "with space",
    "ünïcødé_température",
    "' OR 1=1 --",
    "a" * 63,
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_create_exactly_that_object(
    db: Database, raw: Any, canary: None, name: str
) -> None:
    db.create_timescale_db(name)
    db.new_column(name, name, DataType.double)
    db.new_entry(name, [name], [2.5], check_columns=True)
    assert db.check_table(name) and db.check_column(name, name)
    with raw.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND relname = %s", (name,))
        assert cursor.fetchall() == [(name,)]
    assert db.fetch_latest_value(name, [name])[1] == 2.5  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "message"),
    [("b" * 64, "63"), ("", "empty"), ("nul\x00byte", "NUL"), (None, "must be a string")],
    ids=["too long", "empty", "nul", "none"],
)
def test_impossible_names_are_clear_errors(
    db: Database, canary: None, name: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        db.create_timescale_db(name)


def test_a_failed_statement_leaves_the_connection_usable(db: Database) -> None:
    db.create_timescale_db("t")
    db.new_column("t", "v", DataType.double)
    with pytest.raises(psycopg2.Error):
        db.new_entry("t", ["missing_column"], [1.0])
    with pytest.raises(psycopg2.Error):
        db.new_entry("t", ["v"], ["not a number"])
    db.new_entry("t", ["v"], [1.0])
    assert db.fetch_latest_value("t", ["v"])[1] == 1.0  # type: ignore[index]


def test_checks_leave_no_idle_transaction(db: Database, raw: Any) -> None:
    db.create_timescale_db("t")
    db.check_table("t")
    db.check_column("t", "time")
    assert db.connection is not None
    pid = db.connection.get_backend_pid()
    with raw.cursor() as cursor:
        cursor.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,))
        assert cursor.fetchone() == ("idle",)


def test_new_entry_time_is_the_insert_time(db: Database) -> None:
    db.create_timescale_db("t")
    db.new_column("t", "v", DataType.double)
    db.check_table("t")
    checked = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.3)  # a gap between the check and the insert, not a timing assertion
    db.new_entry("t", ["v"], [1.0])
    (stamp, _) = db.fetch_latest_value("t", ["v"])  # type: ignore[misc]
    assert stamp > checked + dt.timedelta(seconds=0.2)


def test_missing_table_errors_say_what_to_do(db: Database) -> None:
    with pytest.raises(psycopg2.IntegrityError, match="create it with create_timescale_db"):
        db.new_column("nope", "v", DataType.double)
    db.create_timescale_db("t")
    with pytest.raises(psycopg2.IntegrityError, match="add it with new_column"):
        db.new_entry("t", ["v"], [1.0], check_columns=True)
