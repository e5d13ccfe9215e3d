"""DAQ ingest: ours next to psycopg2's own ways and the server's own COPY from a file."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import psycopg2
import psycopg2.extras
from report import Comparison, best_of, rate, timed

from lab_utils.database import BufferedWriter, Database, DataType, EmbeddedPostgres

COLUMNS = ["time"] + [f"ch{n}" for n in range(8)]


def _rows(count: int) -> list[list[object]]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    step = dt.timedelta(microseconds=1)
    return [[start + step * n] + [float(n)] * 8 for n in range(count)]


def _table(db: Database, name: str) -> None:
    db.create_timescale_db(name)
    for column in COLUMNS[1:]:
        db.new_column(name, column, DataType.double)


def _truncate(raw: psycopg2.extensions.connection, table: str) -> None:
    with raw.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}")


def run(quick: bool = False) -> list[Comparison]:
    """Rows per second of each way to write DAQ rows, with its peer from the same run."""
    sizes = [20_000] if quick else [100_000, 1_000_000]
    rounds = 2 if quick else 3
    results = []
    with EmbeddedPostgres() as server:
        db = server.database("bench")
        _table(db, "daq")
        raw = psycopg2.connect(**db.connection_parameters())
        raw.autocommit = True
        folder = Path(tempfile.mkdtemp(prefix="lab-db-bench-"))
        folder.chmod(0o777)  # the server (another user when run as root) writes and reads it
        for size in sizes:
            rows = _rows(size)
            dump = folder / f"daq-{size}.bin"
            db.insert_many("daq", COLUMNS, rows)
            with raw.cursor() as cursor:
                cursor.execute(f"COPY daq TO '{dump}' WITH (FORMAT binary)")
            _truncate(raw, "daq")

            def server_copy(dump: Path = dump, size: int = size) -> float:
                _truncate(raw, "daq")
                with raw.cursor() as cursor:
                    seconds = timed(
                        lambda: cursor.execute(f"COPY daq FROM '{dump}' WITH (FORMAT binary)")
                    )
                return rate(size, seconds)

            def ours(rows: list[list[object]] = rows, size: int = size) -> float:
                _truncate(raw, "daq")
                return rate(size, timed(lambda: db.insert_many("daq", COLUMNS, rows)))

            peer, mine = best_of(rounds, server_copy, ours)
            results.append(Comparison("database", f"batch insert, {size:,} rows", "rows/s", mine, peer,
                                      "server binary COPY FROM file", ">=0.8x"))  # fmt: skip

        rows = _rows(sizes[0])

        def batch() -> float:
            _truncate(raw, "daq")
            return rate(len(rows), timed(lambda: db.insert_many("daq", COLUMNS, rows)))

        def writer() -> float:
            _truncate(raw, "daq")
            spool = Path(tempfile.mkdtemp(prefix="lab-db-spool-"))

            def write() -> None:
                with BufferedWriter(
                    db, "daq", COLUMNS, batch_size=20_000, flush_interval=0.5, spool_dir=spool
                ) as w:
                    w.add_many(rows)

            return rate(len(rows), timed(write))

        peer, mine = best_of(rounds, batch, writer)
        results.append(Comparison("database", f"buffered writer, {len(rows):,} rows", "rows/s", mine, peer,
                                  "insert_many (batch insert)", ">=0.9x"))  # fmt: skip

        small = rows[: 300 if quick else 2000]

        def raw_insert() -> float:
            _truncate(raw, "daq")
            connection = psycopg2.connect(**db.connection_parameters())
            cursor = connection.cursor()
            query = f"INSERT INTO daq ({', '.join(COLUMNS[1:])}) VALUES ({', '.join(['%s'] * 8)})"

            def go() -> None:
                for row in small:
                    cursor.execute(query, row[1:])
                    connection.commit()

            seconds = timed(go)
            connection.close()
            return rate(len(small), seconds)

        def new_entry() -> float:
            _truncate(raw, "daq")
            return rate(
                len(small),
                timed(lambda: [db.new_entry("daq", COLUMNS[1:], row[1:]) for row in small]),
            )

        def execute_values() -> float:
            _truncate(raw, "daq")
            with raw.cursor() as cursor:
                query = f"INSERT INTO daq ({', '.join(COLUMNS)}) VALUES %s"
                return rate(
                    len(rows),
                    timed(
                        lambda: psycopg2.extras.execute_values(cursor, query, rows, page_size=1000)
                    ),
                )

        peer, mine = best_of(rounds, raw_insert, new_entry)
        results.append(Comparison("database", "new_entry, one row + commit", "rows/s", mine, peer,
                                  "raw psycopg2 INSERT + commit", ">=0.9x"))  # fmt: skip
        (values,) = best_of(rounds, execute_values)
        results.append(Comparison("database", f"batch insert, {len(rows):,} rows", "rows/s",
                                  results[0].ours if quick else batch(), values,
                                  "psycopg2 execute_values", "report"))  # fmt: skip
        raw.close()
        db.close()
    return results
