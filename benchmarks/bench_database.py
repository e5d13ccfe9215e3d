"""DAQ ingest: ours next to psycopg 3, raw psycopg2 and the server's own COPY from a file.

The server is the machine's PostgreSQL with TimescaleDB preloaded (``LAB_DB_TIMESCALE_PG``,
default ``/usr/lib/postgresql/15``), else an embedded one without the hypertable table.
Each way writes the same in-memory rows (a tz-aware time and 8 doubles) into an empty
table (TRUNCATE and CHECKPOINT outside the timing) and is verified afterwards (count, sum,
min/max time). The ways run interleaved, in a rotating order, for several reps; a ratio
is the median of the per-rep ratios of ours and its peer from the same rep.

Run alone for the memory figure: ``python bench_database.py memory WAY ROWS DSN``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
from report import Comparison

from lab_utils.database import BufferedWriter, Database, EmbeddedPostgres, fast_rows
from lab_utils.database.binary_copy import RowEncoder

COLUMNS = ["time"] + [f"ch{n}" for n in range(8)]
TYPES = ["timestamptz"] + ["float8"] * 8
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
STEP = dt.timedelta(milliseconds=1)
TIMESCALE_PG = Path(os.environ.get("LAB_DB_TIMESCALE_PG", "/usr/lib/postgresql/15"))


def _row(n: int) -> list[Any]:
    return [START + STEP * n] + [float(n)] * 8


def _rows(count: int) -> list[list[Any]]:
    return [_row(n) for n in range(count)]


class Bench:
    """One server, its tables, and the ways of writing into them."""

    def __init__(self, server: EmbeddedPostgres, timescale: bool, folder: Path) -> None:
        self.db = server.database("bench")
        self.params = self.db.connection_parameters()
        self.raw = psycopg2.connect(**self.params)
        self.raw.autocommit = True
        self.folder = folder
        self.tables = ["plain", "indexed"] + (["hyper"] if timescale else [])
        columns = ", ".join(f"{c} float8" for c in COLUMNS[1:])
        for table in self.tables:
            self.sql(f"CREATE TABLE {table} (time timestamptz NOT NULL DEFAULT now(), {columns})")
        self.sql("CREATE INDEX ON indexed (time)")
        if timescale:
            self.sql("CREATE EXTENSION IF NOT EXISTS timescaledb")
            self.sql("SELECT create_hypertable('hyper', 'time')")

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        with self.raw.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchall() if cursor.description else []

    def empty(self, table: str) -> None:
        self.sql(f"TRUNCATE {table}")
        self.sql("CHECKPOINT")

    def verify(self, table: str, count: int, with_time: bool = True) -> None:
        """The table holds exactly the ``count`` rows of ``_rows(count)``."""
        ((got, total, first, last),) = self.sql(
            f"SELECT count(*), sum(ch0), min(time), max(time) FROM {table}"
        )
        expected = (count, count * (count - 1) / 2)
        if with_time:
            expected += (START, START + STEP * (count - 1))  # type: ignore[assignment]
        if (got, total, first, last)[: len(expected)] != expected:
            raise AssertionError(f"{table}: {got, total, first, last} != {expected}")

    def dump(self, table: str, rows: list[list[Any]]) -> Path:
        """A binary COPY file of ``rows`` that the server reads itself."""
        path = self.folder / f"{table}-{len(rows)}.bin"
        self.db.insert_many(table, COLUMNS, rows)
        # A query, not the table: COPY TO of a hypertable sees only its empty parent.
        query = f"SELECT {', '.join(COLUMNS)} FROM {table}"
        self.sql(f"COPY ({query}) TO '{path}' WITH (FORMAT binary)")
        return path


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _measure(
    bench: Bench, ways: dict[str, Callable[[], float]], reps: int
) -> dict[str, list[float]]:
    """Rows per second of each way, per rep, the ways interleaved in a rotating order."""
    names = list(ways)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            rates[name].append(ways[name]())
    return rates


def _compare(
    rates: dict[str, list[float]], ours: str, peer: str, what: str, target: str
) -> Comparison:
    ratios = [a / b for a, b in zip(rates[ours], rates[peer], strict=True)]
    return Comparison(
        "database", what, "rows/s", statistics.median(rates[ours]),
        statistics.median(rates[peer]), peer, target,
        notes={"reps": len(ratios), "min_ratio": min(ratios), "max_ratio": max(ratios)},
        median_ratio=statistics.median(ratios),
    )  # fmt: skip


def _without_numpy(action: Callable[[], object]) -> None:
    """Run ``action`` as on the default install: lab-db uses numpy only when imported."""
    numpy = sys.modules.pop("numpy")
    try:
        action()
    finally:
        sys.modules["numpy"] = numpy


def _cpu_seconds(pid: int) -> float:
    """CPU time used so far by a local process (a server backend), from /proc.

    ``schedstat`` counts nanoseconds; ``stat`` counts clock ticks (10 ms, 0.1 us per row
    of 100,000 rows), used where the kernel has no ``schedstat``.
    """
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _batch_ways(
    bench: Bench, table: str, rows: list[list[Any]], cpu: dict[str, list[tuple[float, float]]]
) -> dict[str, Callable[[], float]]:
    import numpy
    import psycopg

    count = len(rows)
    dump = bench.dump(table, rows)
    types = bench.db.column_types(table, COLUMNS)
    fast, plain = RowEncoder(types), RowEncoder(types, accelerate=False)
    arrays = [numpy.array([START.replace(tzinfo=None) + STEP * n for n in range(count)],
                          dtype="datetime64[us]")]  # fmt: skip
    arrays += [numpy.arange(count, dtype=numpy.float64) for _ in range(8)]
    p3 = psycopg.connect(" ".join(f"{k}={v}" for k, v in bench.params.items()))
    copy_sql = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT binary)"

    def run(name: str, action: Callable[[], object], backend: int) -> float:
        bench.empty(table)
        client, server = time.process_time(), _cpu_seconds(backend)
        seconds = _timed(action)
        cpu.setdefault(name, []).append(
            (time.process_time() - client, _cpu_seconds(backend) - server)
        )
        bench.verify(table, count)
        return count / seconds

    def server_file() -> None:
        bench.sql(f"COPY {table} ({', '.join(COLUMNS)}) FROM '{dump}' WITH (FORMAT binary)")

    def psycopg3() -> None:
        with p3.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.set_types(TYPES)
            for row in rows:
                copy.write_row(row)
        p3.commit()

    ours = bench.db.require_connection().get_backend_pid()
    return {
        "server binary COPY FROM file": lambda: run(
            "server binary COPY FROM file", server_file, bench.raw.get_backend_pid()
        ),
        "psycopg 3 binary COPY": lambda: run(
            "psycopg 3 binary COPY", psycopg3, p3.info.backend_pid
        ),
        "insert_many": lambda: run(
            "insert_many", lambda: bench.db.insert_many(table, COLUMNS, rows, encoder=fast), ours
        ),
        "insert_many without lab-db[fast]": lambda: run(
            "insert_many without lab-db[fast]",
            lambda: _without_numpy(
                lambda: bench.db.insert_many(table, COLUMNS, rows, encoder=plain)
            ),
            ours,
        ),
        "insert_columns (numpy)": lambda: run(
            "insert_columns (numpy)",
            lambda: bench.db.insert_columns(table, COLUMNS, arrays, encoder=fast),
            ours,
        ),
    }


def _writer_ways(
    bench: Bench,
    rows: list[list[Any]],
    producer: dict[str, list[float]],
    writers: contextlib.ExitStack,
) -> dict[str, Callable[[], float]]:
    """insert_many and the writer with its defaults (what users get), add() also with big
    batches; ``producer`` gets the producer's CPU cost per row of add() and of add_many()
    with the defaults, per rep (the thread's own CPU time: the writer's thread not in it).

    A DAQ daemon's writer lives as long as the daemon, as ``insert_many``'s connection
    does: each way keeps one writer for every rep (closed by ``writers``), warmed by one
    untimed pass, and a rep is timed until ``flush()`` says every row is committed. A new
    writer's server backend pays about 4,500 page faults mapping the server's shared memory
    (7-8 ms per 100,000 rows, measured) that a long-lived connection paid long before: the
    cost of a writer made, used once and closed is reported apart.
    """
    table, count = "plain", len(rows)
    fast = RowEncoder(bench.db.column_types(table, COLUMNS))
    kept: dict[str, BufferedWriter] = {}

    def batch() -> float:
        bench.empty(table)
        seconds = _timed(lambda: bench.db.insert_many(table, COLUMNS, rows, encoder=fast))
        bench.verify(table, count)
        return count / seconds

    def new_writer(**options: Any) -> BufferedWriter:
        spool = Path(tempfile.mkdtemp(prefix="lab-db-spool-"))
        writers.callback(shutil.rmtree, spool, ignore_errors=True)
        writer = BufferedWriter(bench.db, table, COLUMNS, spool_dir=spool, **options)
        writer.add(_row(0))  # connected and warm before the clock starts
        writer.flush()
        return writer

    def fill(writer: BufferedWriter, one_by_one: bool, cost: list[float] | None) -> None:
        cpu = time.thread_time()
        if one_by_one:
            add = writer.add
            for row in rows:
                add(row)
        else:
            writer.add_many(rows)
        if cost is not None:
            cost.append((time.thread_time() - cpu) / count * 1e6)

    def long_lived(name: str, one_by_one: bool, **options: Any) -> float:
        writer = kept.get(name)
        if writer is None:
            writer = kept[name] = new_writer(**options)
            writers.callback(writer.close)
            fill(writer, one_by_one, None)  # the warm-up pass
            writer.flush()
        bench.empty(table)
        start = time.perf_counter()
        fill(writer, one_by_one, None if options else producer["add" if one_by_one else "add_many"])
        if not writer.flush():
            raise RuntimeError(f"{name}: flush() timed out")
        seconds = time.perf_counter() - start
        bench.verify(table, count)
        return count / seconds

    def used_once() -> float:
        writer = new_writer()
        bench.empty(table)
        start = time.perf_counter()
        fill(writer, True, None)
        writer.close()
        seconds = time.perf_counter() - start
        bench.verify(table, count)
        return count / seconds

    return {
        "insert_many": batch,
        "BufferedWriter.add": lambda: long_lived("add", True),
        "BufferedWriter.add_many": lambda: long_lived("add_many", False),
        "BufferedWriter.add, 20,000-row batches": lambda: long_lived(
            "big", True, batch_size=20_000
        ),
        "BufferedWriter.add, a new writer, to close()": used_once,
    }


def _single_row_ways(bench: Bench, count: int) -> dict[str, Callable[[], float]]:
    table = "plain"
    rows = _rows(count)
    query = f"INSERT INTO {table} ({', '.join(COLUMNS[1:])}) VALUES ({', '.join(['%s'] * 8)})"

    def raw_insert() -> float:
        bench.empty(table)
        connection = psycopg2.connect(**bench.params)
        cursor = connection.cursor()

        def go() -> None:
            for row in rows:
                cursor.execute(query, row[1:])
                connection.commit()

        seconds = _timed(go)
        connection.close()
        bench.verify(table, count, with_time=False)
        return count / seconds

    def new_entry() -> float:
        bench.empty(table)
        db = bench.db.clone()
        seconds = _timed(lambda: [db.new_entry(table, COLUMNS[1:], row[1:]) for row in rows])
        db.close()
        bench.verify(table, count, with_time=False)
        return count / seconds

    return {"raw psycopg2 INSERT + commit": raw_insert, "new_entry": new_entry}


def _memory(way: str, count: int, dsn: str) -> None:
    """Ingest ``count`` generated rows; print the peak and the starting RSS in MiB."""
    params = dict(part.split("=", 1) for part in dsn.split())
    db = Database(host=params["host"], port=int(params["port"]), database=params["dbname"],
                  user=params["user"])  # fmt: skip
    db.connect()
    rows: Iterator[list[Any]] = (_row(n) for n in range(count))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if way == "insert_many":
        db.insert_many("plain", COLUMNS, rows)
    else:
        spool = Path(tempfile.mkdtemp(prefix="lab-db-spool-"))
        with BufferedWriter(db, "plain", COLUMNS, spool_dir=spool) as writer:  # the defaults
            add = writer.add
            for row in rows:
                add(row)
        shutil.rmtree(spool, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{peak:.1f} {before:.1f}")


def _memory_comparisons(bench: Bench, count: int) -> list[Comparison]:
    results = []
    dsn = " ".join(f"{k}={v}" for k, v in bench.params.items() if k != "passfile")
    for way in ("insert_many", "BufferedWriter.add"):
        bench.empty("plain")
        done = subprocess.run(  # this file, our interpreter
            [sys.executable, __file__, "memory", way, str(count), dsn],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        peak, before = map(float, done.stdout.split())
        bench.verify("plain", count)
        results.append(Comparison("database", f"peak memory, {way}, {count:,} rows from an iterator",
                                  "MiB", peak, before, "the same process before ingest", "report",
                                  notes={"held_mib": peak - before}))  # fmt: skip
    return results


def _server(root: Path) -> tuple[EmbeddedPostgres, bool]:
    """The machine's PostgreSQL with TimescaleDB preloaded, else an embedded one."""
    if not (TIMESCALE_PG / "lib" / "timescaledb.so").exists():
        return EmbeddedPostgres().start(), False
    server = EmbeddedPostgres(root / "pg")
    server.bin = TIMESCALE_PG / "bin"
    server.start()  # creates the cluster; preloaded libraries need a restart
    server.stop()
    with (server.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write("shared_preload_libraries = 'timescaledb'\n"
                   "timescaledb.telemetry_level = 'off'\n")  # fmt: skip
    server.start()
    return server, True


def run(quick: bool = False) -> list[Comparison]:
    """Rows per second of each way to write DAQ rows, with its peer from the same run."""
    count = 20_000 if quick else 100_000
    reps = 5 if quick else 7
    memory_rows = 200_000 if quick else 10_000_000
    root = Path(tempfile.mkdtemp(prefix="lab-db-bench-"))
    root.chmod(0o777)  # the server (another user when run as root) writes and reads it
    server, timescale = _server(root)
    results: list[Comparison] = []
    try:
        bench = Bench(server, timescale, root)
        rows = _rows(count)
        for table in bench.tables:
            cpu: dict[str, list[tuple[float, float]]] = {}
            rates = _measure(bench, _batch_ways(bench, table, rows, cpu), reps)
            label = f"{table} table, {count:,} rows"
            limit = "server binary COPY FROM file"
            results += [
                _compare(rates, "insert_many", "psycopg 3 binary COPY",
                         f"insert_many, {label}", ">=1.0x"),
                _compare(rates, "insert_many", limit, f"insert_many, {label}", ">=0.9x"),
                _compare(rates, "insert_many without lab-db[fast]", limit,
                         f"insert_many without lab-db[fast], {label}", ">=0.7x"),
                _compare(rates, "insert_columns (numpy)", limit,
                         f"insert_columns (numpy arrays), {label}", ">=0.9x"),
                _compare(rates, "psycopg 3 binary COPY", limit,
                         f"psycopg 3 binary COPY, {label}", "report"),
            ]  # fmt: skip
            for result in results[-5:]:
                # Where the time goes: CPU microseconds per row of the client and the server.
                name = result.what.split(",")[0].replace(" (numpy arrays)", " (numpy)")
                for side, index in (("client", 0), ("server", 1)):
                    for who, key in (("ours", name), ("peer", result.peer_name)):
                        spent = statistics.median(c[index] for c in cpu[key])
                        result.notes[f"{who}_{side}_cpu_us_per_row"] = spent / count * 1e6
        producer: dict[str, list[float]] = {"add": [], "add_many": []}
        with contextlib.ExitStack() as writers:
            rates = _measure(bench, _writer_ways(bench, rows, producer, writers), reps)
        label = f"plain table, {count:,} rows"
        results += [
            _compare(rates, "BufferedWriter.add", "insert_many",
                     f"BufferedWriter, add() per row, defaults, {label}", ">=0.9x"),
            _compare(rates, "BufferedWriter.add_many", "insert_many",
                     f"BufferedWriter, add_many(), defaults, {label}", ">=0.9x"),
            _compare(rates, "BufferedWriter.add, 20,000-row batches", "insert_many",
                     f"BufferedWriter, add() per row, batch_size=20,000, {label}", "report"),
            _compare(rates, "BufferedWriter.add, a new writer, to close()", "insert_many",
                     f"BufferedWriter, add() per row, a new writer timed to close(), {label}",
                     "report"),
        ]  # fmt: skip
        batch_us = 1e6 / statistics.median(rates["insert_many"])
        for way in ("add", "add_many"):
            results.append(Comparison("database", f"producer CPU per row of {way}() (9 values)",
                                      "us", statistics.median(producer[way]), batch_us,
                                      "insert_many's whole cost per row", "report"))  # fmt: skip
        rates = _measure(bench, _single_row_ways(bench, 300 if quick else 2000), reps)
        results.append(_compare(rates, "new_entry", "raw psycopg2 INSERT + commit",
                                "new_entry, one row + commit", ">=1.0x"))  # fmt: skip
        results += _memory_comparisons(bench, memory_rows)
        bench.raw.close()
        bench.db.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    for result in results:
        result.notes["psycopg3_formatter"] = float(fast_rows.AVAILABLE)
    return results


if __name__ == "__main__" and sys.argv[1:2] == ["memory"]:
    _memory(sys.argv[2], int(sys.argv[3]), sys.argv[4])
