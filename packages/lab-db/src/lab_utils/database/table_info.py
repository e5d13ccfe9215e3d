"""What the command line reads about a table: its columns, in order, with their types."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg2
import psycopg2.extensions

from lab_utils.database.cli_errors import CommandError
from lab_utils.database.database import Database


def where(db: Database) -> str:
    """Return ``database NAME on HOST:PORT``, the place errors name."""
    return f"database {db.database} on {db.host}:{db.port}"


@contextlib.contextmanager
def reading(db: Database) -> Iterator[psycopg2.extensions.connection]:
    """Open a read-only connection with ``db``'s settings, for queries of our own."""
    connection = psycopg2.connect(**db.connection_parameters())
    try:
        connection.set_session(readonly=True, autocommit=True)
        yield connection
    finally:
        connection.close()


def columns(db: Database, table: str) -> dict[str, str]:
    """Return ``{column: type name}`` of ``table`` in table order.

    Raises
    ------
    CommandError
        The table does not exist (with the command that creates it as the hint).
    """
    try:
        return db.table_columns(table)
    except psycopg2.IntegrityError:  # the library's word for a missing table
        raise CommandError(
            f"table {table!r} does not exist",
            where(db),
            f"create it with: lab-db create-table {table}",
        ) from None


def require_columns(db: Database, table: str, wanted: list[str]) -> list[str]:
    """Return the type names of ``wanted`` columns of ``table``, or say which is missing."""
    found = columns(db, table)
    for name in wanted:
        if name not in found:
            raise CommandError(
                f"table {table!r} has no column {name!r} (columns: {', '.join(found)})",
                where(db),
                f"add it with: lab-db create-column {table} {name} TYPE",
            )
    return [found[name] for name in wanted]
