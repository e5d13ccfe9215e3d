"""TimescaleDB for real: each path on the Community and Apache-2 editions and plain PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from lab_utils.database import (
    BufferedWriter,
    Database,
    DataType,
    TimescaleEditionError,
    TimescaleUnavailableError,
)

START = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
HOSTILE = 'x"; DROP TABLE canary; --'


def _one(db: Database, query: str, *args: Any) -> Any:
    with db.transaction("test query") as cursor:
        cursor.execute(query, args)
        return cursor.fetchone()


def _edition(db: Database) -> str:
    return str(_one(db, "SHOW timescaledb.license")[0])


def _series(db: Database, table: str = "gauge") -> None:
    db.create_timescale_db(table, require_timescale=True)
    db.new_column(table, "v", DataType.double)
    db.new_column(table, "n", DataType.int)


def test_hypertables_are_created_idempotently_on_either_edition(tsdb: Database) -> None:
    assert tsdb.timescale_version() is not None and tsdb.timescale_version() >= (2, 28)  # type: ignore[operator]
    assert tsdb.timescale_edition() == _edition(tsdb)
    for name in ("gauge", HOSTILE):
        for _ in range(2):  # a daemon does it on every start
            tsdb.create_timescale_db(name, require_timescale=True)
        found = _one(
            tsdb,
            "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = %s",
            name,
        )
        assert found == (1,)


def test_inserts_through_new_entry_insert_many_and_the_writer(
    tsdb: Database, tmp_path: Path
) -> None:
    _series(tsdb)
    tsdb.new_entry("gauge", ["v", "n"], [0.5, 1])
    rows = [[START + dt.timedelta(days=n), float(n), n] for n in range(30)]
    assert tsdb.insert_many("gauge", ["time", "v", "n"], rows) == 30
    with BufferedWriter(tsdb, "gauge", ["time", "v", "n"], spool_dir=tmp_path / "spool") as writer:
        writer.add_many([[START - dt.timedelta(days=n + 1), -1.0, -n] for n in range(20)])
    assert writer.rows_written == 20 and writer.rows_rejected == 0
    assert _one(tsdb, "SELECT count(*) FROM gauge") == (51,)
    chunks = _one(
        tsdb,
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'gauge'",
    )
    assert chunks[0] >= 2  # the rows span weeks: the hypertable split them into chunks


def test_time_bucket_read_backs(tsdb: Database) -> None:
    _series(tsdb)
    rows = [[START + dt.timedelta(seconds=n), float(n), n] for n in range(120)]
    tsdb.insert_many("gauge", ["time", "v", "n"], rows)
    assert tsdb.fetch_averages("gauge", ["v"], bucket="1 minute") == [
        (START, 29.5),
        (START + dt.timedelta(minutes=1), 89.5),
    ]
    assert [r[1] for r in tsdb.fetch_latest("gauge", ["v"], limit=2)] == [119.0, 118.0]
    window = tsdb.fetch_range("gauge", START, START + dt.timedelta(seconds=3), ["n"])
    assert [r[1] for r in window] == [0, 1, 2]


def test_aggregate_view_is_continuous_on_the_community_edition_and_plain_on_apache(
    tsdb: Database,
) -> None:
    _series(tsdb)
    rows = [[START + dt.timedelta(seconds=n), float(n), n] for n in range(120)]
    tsdb.insert_many("gauge", ["time", "v", "n"], rows)
    for recreate in (True, True, False):
        assert tsdb.create_aggregate_view("gauge", recreate=recreate) == "gauge_1min"
    continuous = _one(
        tsdb,
        "SELECT count(*) FROM timescaledb_information.continuous_aggregates"
        " WHERE view_name = 'gauge_1min'",
    )
    assert continuous == ((1,) if _edition(tsdb) == "timescale" else (0,))
    with tsdb.transaction("columns") as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'gauge_1min' ORDER BY ordinal_position"
        )
        assert [r[0] for r in cursor.fetchall()] == ["time", "v_avg", "n_avg"]
    if _edition(tsdb) == "timescale":  # materialise what the plain view computes on read
        with tsdb.autocommit() as cursor:
            cursor.execute("CALL refresh_continuous_aggregate('gauge_1min', NULL, NULL)")
    with tsdb.transaction("averages") as cursor:
        cursor.execute("SELECT time, v_avg FROM gauge_1min ORDER BY time")
        assert cursor.fetchall() == [(START, 29.5), (START + dt.timedelta(minutes=1), 89.5)]


def test_retention_and_compression_on_the_community_edition_or_a_clear_error(
    tsdb: Database,
) -> None:
    for name in ("gauge", HOSTILE):
        _series(tsdb, name)
        if _edition(tsdb) == "apache":
            with pytest.raises(TimescaleEditionError, match=r"Apache-2.*edition"):
                tsdb.set_retention(name, "365 days")
            with pytest.raises(TimescaleEditionError, match="Community edition"):
                tsdb.set_compression(name, after="7 days")
            continue
        for _ in range(2):  # setting it again replaces the policy
            tsdb.set_retention(name, "365 days")
            tsdb.set_compression(name, after="7 days")
        with tsdb.transaction("jobs") as cursor:
            cursor.execute(
                "SELECT proc_name, config FROM timescaledb_information.jobs"
                " WHERE hypertable_name = %s ORDER BY proc_name",
                (name,),
            )
            jobs = dict(cursor.fetchall())
        assert set(jobs) == {"policy_compression", "policy_retention"}
        assert jobs["policy_retention"]["drop_after"] == "365 days"
        assert jobs["policy_compression"]["compress_after"] == "7 days"
    with pytest.raises(ValueError, match="interval"):
        tsdb.set_retention("gauge", "1 year'; DROP TABLE gauge; --")


def test_plain_postgresql_makes_a_plain_view_and_refuses_policies(db: Database) -> None:
    db.create_timescale_db("gauge")
    db.new_column("gauge", "v", DataType.double)
    assert db.timescale_edition() is None
    assert db.create_aggregate_view("gauge") == "gauge_1min"
    assert db.check_table("gauge_1min")
    with pytest.raises(TimescaleUnavailableError, match="not installed"):
        db.set_retention("gauge", "365 days")
    with pytest.raises(psycopg2.NotSupportedError):
        db.set_compression("gauge")
