"""Reading back a missing table or column: one clear error, the connection still usable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

from lab_utils.database import Database
from lab_utils.database.database import MissingColumnError, MissingTableError

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # the time of the gauge fixture's row
END = START + dt.timedelta(days=1)


def _still_usable(db: Database) -> None:
    """The failed statement was rolled back: the connection is idle and answers."""
    assert db.connection is not None
    status = db.connection.get_transaction_status()
    assert status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    assert db.fetch_latest_value("gauge") == (START, 1.5)


def test_fetch_latest_value_of_a_missing_table_names_it_and_says_what_to_do(
    gauge: Database, logged_errors: Callable[[], list[str]]
) -> None:
    with pytest.raises(MissingTableError) as raised:
        gauge.fetch_latest_value("guage")
    error = raised.value
    assert str(error) == (
        f"table 'guage' does not exist in database {gauge.database!r} on"
        f" {gauge.host}:{gauge.port} (did you mean 'gauge'?): check the name, or create it"
        " with create_timescale_db('guage')"
    )
    assert error.table == "guage"
    # What 0.5 raised (IntegrityError) and what the server says (UndefinedTable) alike.
    assert isinstance(error, psycopg2.IntegrityError)
    assert isinstance(error, psycopg2.errors.UndefinedTable)
    assert isinstance(error, psycopg2.ProgrammingError)
    assert error.pgcode == "42P01"
    assert logged_errors() == [f"fetch_latest('guage') failed: {error}"]  # once, clearly
    _still_usable(gauge)


def test_fetch_latest_value_of_a_missing_column_names_it_and_lists_the_columns(
    gauge: Database, logged_errors: Callable[[], list[str]]
) -> None:
    with pytest.raises(MissingColumnError) as raised:
        gauge.fetch_latest_value("gauge", ["pressure", "presure"])
    error = raised.value
    assert str(error) == (
        "table 'gauge' has no column 'presure' (columns: time, pressure) in database"
        f" {gauge.database!r} on {gauge.host}:{gauge.port}: check the name, or add it with"
        " new_column('gauge', 'presure', DataType...)"
    )
    assert (error.table, error.columns) == ("gauge", ["presure"])
    assert isinstance(error, psycopg2.errors.UndefinedColumn)
    assert isinstance(error, psycopg2.IntegrityError)
    assert error.pgcode == "42703"
    assert len(logged_errors()) == 1
    _still_usable(gauge)


READS: dict[str, Callable[[Database, str], Any]] = {
    "fetch_latest": lambda db, table: db.fetch_latest(table),
    "fetch_range": lambda db, table: db.fetch_range(table, START, END),
    "fetch_averages": lambda db, table: db.fetch_averages(table, ["pressure"]),
    "check_empty_table": lambda db, table: db.check_empty_table(table),
    "select_entries": lambda db, table: db.select_entries(table, {"pressure": 1.5}),
    "retrieve_entries": lambda db, table: db.retrieve_entries(table, "true"),
    "fetch_next_serial_id": lambda db, table: db.fetch_next_serial_id(table),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_every_read_back_of_a_missing_table_says_so_and_leaves_the_connection_usable(
    gauge: Database, read: Callable[[Database, str], Any]
) -> None:
    with pytest.raises(MissingTableError, match="table 'nowhere' does not exist in database"):
        read(gauge, "nowhere")
    _still_usable(gauge)


COLUMN_READS: dict[str, Callable[[Database], Any]] = {
    "fetch_latest": lambda db: db.fetch_latest("gauge", ["volts"]),
    "fetch_range": lambda db: db.fetch_range("gauge", START, END, ["volts"]),
    "fetch_averages": lambda db: db.fetch_averages("gauge", ["pressure", "volts"]),
    "select_entries where": lambda db: db.select_entries("gauge", [("volts", ">", 1)]),
    "select_entries columns": lambda db: db.select_entries("gauge", columns=["volts"]),
    "select_entries order_by": lambda db: db.select_entries("gauge", order_by="volts"),
}


@pytest.mark.parametrize("read", COLUMN_READS.values(), ids=COLUMN_READS.keys())
def test_every_read_back_of_a_missing_column_names_it_and_leaves_the_connection_usable(
    gauge: Database, read: Callable[[Database], Any]
) -> None:
    with pytest.raises(MissingColumnError, match=r"table 'gauge' has no column 'volts' \("):
        read(gauge)
    _still_usable(gauge)


def test_a_table_without_a_time_column_is_named_as_the_reason(gauge: Database, raw: Any) -> None:
    with raw.cursor() as cursor:
        cursor.execute("CREATE TABLE runs (id integer)")
    with pytest.raises(MissingColumnError, match=r"no column 'time' \(read-back orders rows by"):
        gauge.fetch_latest_value("runs")
    _still_usable(gauge)


def test_raw_conditions_naming_a_missing_column_keep_the_servers_error(
    gauge: Database, logged_errors: Callable[[], list[str]]
) -> None:
    # retrieve_entries sends its conditions as written: the server's words say what is wrong.
    with pytest.raises(psycopg2.errors.UndefinedColumn, match='column "volts" does not exist'):
        gauge.retrieve_entries("gauge", "volts > 1")
    assert len(logged_errors()) == 1
    _still_usable(gauge)
