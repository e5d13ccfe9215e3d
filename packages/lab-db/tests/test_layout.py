"""The parts behind ``Database``: transactions, clones, the column-type registry."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg2
import pytest

from lab_utils.database import Database, DataType, EmbeddedError, column_type, value_from_text
from lab_utils.database.binary_copy import FIXED, RowEncoder


def test_transaction_commits_or_rolls_back(db: Database, raw: Any) -> None:
    db.create_timescale_db("t")
    db.new_column("t", "v", DataType.double)
    with db.transaction("two rows") as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (1), (2)")
    with pytest.raises(psycopg2.Error), db.transaction("half") as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (3)")
        cursor.execute("INSERT INTO t (nope) VALUES (4)")
    with raw.cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY v")
        assert cursor.fetchall() == [(1.0,), (2.0,)]


def test_clone_has_the_same_settings_and_its_own_connection(db: Database) -> None:
    other = db.clone()
    try:
        assert other.connection_parameters() == db.connection_parameters()
        assert other.connection is not None and db.connection is not None
        assert other.connection.get_backend_pid() != db.connection.get_backend_pid()
    finally:
        other.close()
    assert db.check_table("anything") is False  # the original is untouched


def test_one_registry_for_data_types_the_encoder_and_text() -> None:
    for member in DataType:
        kind = member.column_type
        assert kind.declared == member.value and kind.data_type == member.name
    assert FIXED["double precision"] == ("d", 8)
    assert column_type("character varying(20)").name == "character varying"
    assert value_from_text("double precision", "1.5") == 1.5
    assert value_from_text("boolean", "off") is False
    assert value_from_text("integer", "NULL") is None
    assert value_from_text("timestamp with time zone", "2026-01-01T00:00:00+00:00") == dt.datetime(
        2026, 1, 1, tzinfo=dt.timezone.utc
    )
    with pytest.raises(ValueError, match="'n/a' is not a valid double precision"):
        value_from_text("double precision", "n/a")
    with pytest.raises(ValueError, match="not supported"):
        RowEncoder(["jsonb"])


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("integer", 2.5),
        ("integer", 2**40),
        ("boolean", "maybe"),
        ("double precision", "n/a"),
        ("text", b"bytes"),
        ("timestamp with time zone", "yesterday"),
    ],
)
def test_the_encoder_refuses_what_the_column_cannot_hold(kind: str, value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        RowEncoder([kind]).encode_row([value])


def test_embedded_error_is_exported() -> None:
    assert issubclass(EmbeddedError, RuntimeError)
