"""A missing table or column named to the schema and writing calls: the read-back's clear error.

``get_list_columns``, ``new_column``, ``table_columns``, ``column_types`` and the calls
built on them raise :class:`MissingTableError` / :class:`MissingColumnError`, worded as the
read-back words them, still the ``IntegrityError`` 0.4/0.5 raised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

import lab_utils.database
from lab_utils.database import BufferedWriter, Database, DataType, missing, readback
from lab_utils.database.database import MissingColumnError, MissingTableError

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # the time of the gauge fixture's row


def _still_usable(db: Database) -> None:
    """Nothing was left open: the connection is idle and answers."""
    assert db.connection is not None
    status = db.connection.get_transaction_status()
    assert status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    assert db.get_list_columns("gauge") == [
        ["time", "timestamp with time zone"],
        ["pressure", "double precision"],
    ]


def test_get_list_columns_of_a_missing_table_names_it_and_says_what_to_do(
    gauge: Database, logged_errors: Callable[[], list[str]]
) -> None:
    with pytest.raises(MissingTableError) as raised:
        gauge.get_list_columns("guage")
    error = raised.value
    assert str(error) == (
        f"table 'guage' does not exist in database {gauge.database!r} on"
        f" {gauge.host}:{gauge.port} (did you mean 'gauge'?): check the name, or create it"
        " with create_timescale_db('guage')"
    )
    assert error.table == "guage"
    # What 0.4/0.5 raised (IntegrityError) and what the server says (UndefinedTable) alike.
    assert isinstance(error, psycopg2.IntegrityError)
    assert isinstance(error, psycopg2.errors.UndefinedTable)
    assert error.pgcode == "42P01"
    assert logged_errors() == [f"get_list_columns('guage') failed: {error}"]  # once, clearly
    _still_usable(gauge)


def test_new_column_on_a_missing_table_creates_nothing_and_says_so_once(
    gauge: Database, raw: Any, logged_errors: Callable[[], list[str]]
) -> None:
    with pytest.raises(MissingTableError, match=r"table 'guage' does not exist in database"):
        gauge.new_column("guage", "volts", DataType.double)
    error_lines = logged_errors()
    assert len(error_lines) == 1
    assert error_lines[0].startswith("new_column('guage', 'volts') failed: table 'guage'")
    with raw.cursor() as cursor:
        cursor.execute("SELECT to_regclass('guage')")
        assert cursor.fetchone() == (None,)
    _still_usable(gauge)


def test_a_0_5_handler_catching_integrity_error_still_catches_a_missing_table(
    gauge: Database,
) -> None:
    # The shape of the 0.5 lab daemons: new_column on start, IntegrityError means "no table".
    try:
        gauge.new_column("absent", "volts", DataType.double)
    except psycopg2.IntegrityError as error:
        caught: psycopg2.Error = error
    assert isinstance(caught, MissingTableError)


CALLS: dict[str, Callable[[Database, str], Any]] = {
    "get_list_columns": lambda db, table: db.get_list_columns(table),
    "new_column": lambda db, table: db.new_column(table, "volts", DataType.double),
    "table_columns": lambda db, table: db.table_columns(table),
    "column_types": lambda db, table: db.column_types(table, ["pressure"]),
    "new_entry check_columns": lambda db, table: db.new_entry(
        table, ["pressure"], [2.0], check_columns=True
    ),
    "update_measurement": lambda db, table: db.update_measurement(table, 1, ["pressure"], [2.0]),
    "insert_many": lambda db, table: db.insert_many(table, ["time", "pressure"], [(START, 2.0)]),
    "insert_columns": lambda db, table: db.insert_columns(
        table, ["time", "pressure"], [[START], [2.0]]
    ),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_every_schema_and_writing_call_on_a_missing_table_says_so_in_one_error_record(
    gauge: Database, call: Callable[[Database, str], Any], logged_errors: Callable[[], list[str]]
) -> None:
    with pytest.raises(MissingTableError) as raised:
        call(gauge, "nowhere")
    assert str(raised.value).startswith(
        f"table 'nowhere' does not exist in database {gauge.database!r} on"
    )
    assert str(raised.value).endswith(
        ": check the name, or create it with create_timescale_db('nowhere')"
    )
    assert isinstance(raised.value, psycopg2.IntegrityError)
    assert len(logged_errors()) == 1
    _still_usable(gauge)


def test_a_missing_table_is_worded_alike_by_the_schema_calls_and_the_read_back(
    gauge: Database,
) -> None:
    with pytest.raises(MissingTableError) as by_schema:
        gauge.new_column("guage", "volts", DataType.double)
    with pytest.raises(MissingTableError) as by_read_back:
        gauge.fetch_latest_value("guage")
    assert str(by_schema.value) == str(by_read_back.value)


def test_a_buffered_writer_for_a_missing_table_is_refused_at_once(
    gauge: Database, tmp_path: Path
) -> None:
    with pytest.raises(MissingTableError, match="table 'nowhere' does not exist in database"):
        BufferedWriter(gauge, "nowhere", ["time", "pressure"], spool_dir=tmp_path / "spool")
    _still_usable(gauge)


COLUMN_CALLS: dict[str, Callable[[Database], Any]] = {
    "column_types": lambda db: db.column_types("gauge", ["pressure", "volts"]),
    "insert_many": lambda db: db.insert_many("gauge", ["time", "volts"], [(START, 2.0)]),
    "insert_columns": lambda db: db.insert_columns("gauge", ["time", "volts"], [[START], [2.0]]),
    "new_entry check_columns": lambda db: db.new_entry(
        "gauge", ["pressure", "volts"], [2.0, 3.0], check_columns=True
    ),
    "update_measurement": lambda db: db.update_measurement("gauge", 1, ["volts"], [2.0]),
}


@pytest.mark.parametrize("call", COLUMN_CALLS.values(), ids=COLUMN_CALLS.keys())
def test_a_missing_column_is_named_with_the_tables_columns(
    gauge: Database, call: Callable[[Database], Any], logged_errors: Callable[[], list[str]]
) -> None:
    with pytest.raises(MissingColumnError) as raised:
        call(gauge)
    error = raised.value
    assert str(error) == (
        "table 'gauge' has no column 'volts' (columns: time, pressure) in database"
        f" {gauge.database!r} on {gauge.host}:{gauge.port}: check the name, or add it with"
        " new_column('gauge', 'volts', DataType...)"
    )
    assert (error.table, error.columns) == ("gauge", ["volts"])
    assert isinstance(error, psycopg2.IntegrityError)
    assert isinstance(error, psycopg2.errors.UndefinedColumn)
    assert error.pgcode == "42703"
    assert len(logged_errors()) == 1
    _still_usable(gauge)


def test_a_buffered_writer_for_a_missing_column_names_it(gauge: Database, tmp_path: Path) -> None:
    with pytest.raises(MissingColumnError, match=r"table 'gauge' has no column 'volts' \("):
        BufferedWriter(gauge, "gauge", ["time", "volts"], spool_dir=tmp_path / "spool")
    _still_usable(gauge)


def test_the_errors_are_one_class_wherever_they_are_imported_from() -> None:
    assert lab_utils.database.MissingTableError is missing.MissingTableError
    assert lab_utils.database.MissingColumnError is missing.MissingColumnError
    assert readback.MissingTableError is missing.MissingTableError
    assert readback.MissingColumnError is missing.MissingColumnError
