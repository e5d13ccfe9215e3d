"""TimescaleDB itself: run when LAB_DB_TIMESCALE_DSN names a server with the extension."""

from __future__ import annotations

import os
import uuid

import psycopg2
import psycopg2.extensions
import pytest

from lab_utils.database import Database, DataType

DSN = os.environ.get("LAB_DB_TIMESCALE_DSN")
pytestmark = pytest.mark.skipif(
    not DSN, reason="LAB_DB_TIMESCALE_DSN is not set (no TimescaleDB server here)"
)


def test_hypertable_and_continuous_aggregate() -> None:
    params = psycopg2.extensions.parse_dsn(DSN or "")
    db = Database(host=params.get("host"), port=int(params.get("port", 5432)),
                  database=params.get("dbname"), user=params.get("user"))  # fmt: skip
    db.connect()
    table = f"ts_{uuid.uuid4().hex[:8]}"
    try:
        assert db.timescale_version() is not None
        db.create_timescale_db(table, require_timescale=True)
        db.create_timescale_db(table, require_timescale=True)  # idempotent
        db.new_column(table, "v", DataType.double)
        assert db.create_aggregate_view(table) == f"{table}_1min"
        with db.connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                "SELECT count(*) FROM timescaledb_information.hypertables"
                " WHERE hypertable_name = %s",
                (table,),
            )
            assert cursor.fetchone() == (1,)
            cursor.execute(
                "SELECT count(*) FROM timescaledb_information.continuous_aggregates"
                " WHERE view_name = %s",
                (f"{table}_1min",),
            )
            assert cursor.fetchone() == (1,)
    finally:
        db.connection.autocommit = True  # type: ignore[union-attr]
        with db.connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
        db.close()
