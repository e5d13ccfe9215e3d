"""The methods lab_utils 0.5 added, with 0.5's signatures and results, injection-proof."""

from __future__ import annotations

import importlib.util
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

from lab_utils.database import Database, DataType

HOSTILE = ['quo"te', "x; DROP TABLE canary; --", "Mixed Case", "' OR 1=1 --"]
VALUE = "'); DROP TABLE canary; --"


def _measurements(raw: Any, table: str) -> None:
    """A 0.5 measurement table: a serial id and a few columns."""
    with raw.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "CREATE TABLE {} (id serial PRIMARY KEY, operator text, voltage double precision)"
            ).format(sql.Identifier(table))
        )


@pytest.mark.parametrize("name", ["runs", *HOSTILE])
def test_get_list_columns_gives_name_and_type_pairs(db: Database, canary: None, name: str) -> None:
    db.create_timescale_db(name)
    db.new_column(name, name, DataType.double)
    db.new_column(name, "ok", DataType.bool)
    assert db.get_list_columns(name) == [
        ["time", "timestamp with time zone"],
        [name, "double precision"],
        ["ok", "boolean"],
    ]


def test_the_05_methods_refuse_a_missing_table_or_no_connection(db: Database) -> None:
    for call in (
        lambda: db.get_list_columns("nope"),
        lambda: db.check_empty_table("nope"),
        lambda: db.fetch_next_serial_id("nope"),
        lambda: db.update_measurement("nope", 1, ["a"], [1]),
        lambda: db.retrieve_entries("nope", "true"),
        lambda: db.select_entries("nope"),
    ):
        with pytest.raises(psycopg2.IntegrityError, match="does not exist"):
            call()
    db.close()
    with pytest.raises(psycopg2.DatabaseError, match="without initialization"):
        db.check_empty_table("nope")


@pytest.mark.parametrize("name", ["runs", *HOSTILE])
def test_serial_ids_and_empty_tables(db: Database, raw: Any, canary: None, name: str) -> None:
    _measurements(raw, name)
    assert db.check_empty_table(name) is True
    assert db.fetch_next_serial_id(name) == 1
    for _ in range(3):
        with raw.cursor() as cursor:
            cursor.execute(sql.SQL("INSERT INTO {} DEFAULT VALUES").format(sql.Identifier(name)))
    assert db.check_empty_table(name) is False
    assert db.fetch_next_serial_id(name) == 4


def test_fetch_next_serial_id_needs_a_serial_id(db: Database) -> None:
    db.create_timescale_db("plain")
    db.new_entry("plain", ["time"], ["2026-01-01T00:00:00Z"])
    with pytest.raises(psycopg2.IntegrityError, match="no serial 'id'"):
        db.fetch_next_serial_id("plain")


@pytest.mark.parametrize("name", ["runs", *HOSTILE])
def test_update_measurement_by_columns_or_pairs_stores_values_as_given(
    db: Database, raw: Any, canary: None, name: str
) -> None:
    _measurements(raw, name)
    with raw.cursor() as cursor:
        cursor.execute(sql.SQL("INSERT INTO {} DEFAULT VALUES").format(sql.Identifier(name)))
    db.update_measurement(name, 1, columns=["operator", "voltage"], values=[VALUE, "1.5"])
    assert db.select_entries(name, {"id": 1}, ["operator", "voltage"]) == [
        {"operator": VALUE, "voltage": 1.5}
    ]
    db.update_measurement(name, 1, pairs=[("voltage", 2.5), ["operator", "ann"]])
    assert db.select_entries(name, {"id": 1}, ["operator", "voltage"]) == [
        {"operator": "ann", "voltage": 2.5}
    ]


def test_update_measurement_errors_are_the_05_ones(db: Database, raw: Any, canary: None) -> None:
    _measurements(raw, "runs")
    with pytest.raises(psycopg2.DataError, match="different sizes"):
        db.update_measurement("runs", 1, ["operator", "voltage"], ["ann"])
    with pytest.raises(psycopg2.DataError, match="Empty data"):
        db.update_measurement("runs", 1)
    with pytest.raises(psycopg2.DataError, match="Empty data"):
        db.update_measurement("runs", 1, pairs=[])
    with pytest.raises(psycopg2.Error):  # a column that does not exist: the server says so
        db.update_measurement("runs", 1, pairs=[('voltage = 0; DROP TABLE canary; --"', 1)])


def test_retrieve_entries_takes_trusted_sql_conditions(db: Database, raw: Any) -> None:
    _measurements(raw, "runs")
    for operator, voltage in [("ann", 1.0), ("bob", 2.0), ("ann", 3.0)]:
        db.new_entry("runs", ["operator", "voltage"], [operator, voltage])
    assert db.retrieve_entries("runs", "voltage > 1.5") == [
        {"id": 2, "operator": "bob", "voltage": 2.0},
        {"id": 3, "operator": "ann", "voltage": 3.0},
    ]
    rows = db.retrieve_entries("runs", ["operator = 'ann'", "voltage < 2"])
    assert rows == [{"id": 1, "operator": "ann", "voltage": 1.0}]
    if importlib.util.find_spec("pandas") is None:
        with pytest.raises(ImportError, match="pip install pandas"):
            db.retrieve_entries("runs", "true", as_frame=True)
    else:
        frame = db.retrieve_entries("runs", "true", as_frame=True)
        assert list(frame.columns) == ["id", "operator", "voltage"] and len(frame) == 3


def test_select_entries_takes_values_as_parameters(db: Database, raw: Any, canary: None) -> None:
    _measurements(raw, "runs")
    for operator, voltage in [(VALUE, 1.0), ("bob", 2.0), (None, 3.0)]:
        db.new_entry("runs", ["operator", "voltage"], [operator, voltage])
    assert db.select_entries("runs", {"operator": VALUE}, ["id"]) == [{"id": 1}]
    assert db.select_entries("runs", {"operator": None}, ["id"]) == [{"id": 3}]
    assert db.select_entries("runs", [("operator", "!=", None)], ["id"], order_by="id") == [
        {"id": 1},
        {"id": 2},
    ]
    newest = db.select_entries("runs", [("voltage", ">=", 2)], ["voltage"], limit=1)
    assert len(newest) == 1 and newest[0]["voltage"] >= 2
    with pytest.raises(ValueError, match="operator"):
        db.select_entries("runs", [("id", "= 1 OR 1=1 --", 1)])
    with pytest.raises(ValueError, match="not \\(column, operator, value\\)"):
        db.select_entries("runs", [("id", 1)])  # type: ignore[list-item]
