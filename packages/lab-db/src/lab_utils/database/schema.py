"""Tables, columns and databases: checks, creation and the column types of a table."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg2
from psycopg2 import sql

from lab_utils.database.connection import Connection
from lab_utils.database.identifiers import checked_name, ident
from lab_utils.database.sql_types import Constraint, DataType

log = logging.getLogger("lab_utils.database.database")

_TABLE_COLUMNS = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
    " JOIN pg_class c ON c.oid = a.attrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'public' AND c.relname = %s"
    " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
)


class Schema(Connection):
    """Checks and creation of tables, columns and databases."""

    def check_table(self, table_name: str) -> bool:
        """Tell whether table (or view) ``table_name`` exists in the public schema."""
        checked_name(table_name, "table name")
        with self.transaction(f"check_table({table_name!r})") as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_name = %s)",
                (table_name,),
            )
            return bool(cursor.fetchone()[0])  # type: ignore[index]

    def check_column(self, table_name: str, column_name: str) -> bool:
        """Tell whether ``table_name`` has a column ``column_name``."""
        checked_name(table_name, "table name")
        checked_name(column_name, "column name")
        with self.transaction(f"check_column({table_name!r}, {column_name!r})") as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema ="
                " 'public' AND table_name = %s AND column_name = %s)",
                (table_name, column_name),
            )
            return bool(cursor.fetchone()[0])  # type: ignore[index]

    def _require_table(self, table_name: str) -> None:
        if not self.check_table(table_name):
            raise psycopg2.IntegrityError(
                f"table {table_name!r} does not exist: create it first with create_timescale_db()"
            )

    def table_columns(self, table_name: str) -> dict[str, str]:
        """Return ``{column: type}`` of ``table_name`` in column order (``format_type`` names).

        Raises
        ------
        psycopg2.IntegrityError
            The table does not exist.
        """
        checked_name(table_name, "table name")
        with self.transaction(f"column_types({table_name!r})") as cursor:
            cursor.execute(_TABLE_COLUMNS, (table_name,))
            found = dict(cursor.fetchall())
        if not found:
            raise psycopg2.IntegrityError(f"table {table_name!r} does not exist")
        return found

    def column_types(self, table_name: str, columns: Sequence[str]) -> list[str]:
        """Return the PostgreSQL type names of ``columns`` of ``table_name``.

        Raises
        ------
        psycopg2.IntegrityError
            The table or a column does not exist.
        """
        found = self.table_columns(table_name)
        missing = [c for c in columns if c not in found]
        if missing:
            raise psycopg2.IntegrityError(
                f"table {table_name!r} has no column {', '.join(map(repr, missing))}"
                f" (columns: {', '.join(found)})"
            )
        return [found[c] for c in columns]

    def get_list_columns(self, table_name: str) -> list[list[str]]:
        """Return the columns of ``table_name`` as ``[name, type]`` pairs, in order (0.5).

        Types are PostgreSQL's names (``'double precision'``, ``'timestamp with time
        zone'``).

        Raises
        ------
        psycopg2.DatabaseError
            Not connected.
        psycopg2.IntegrityError
            The table does not exist.
        """
        self.require_connection()
        self._require_table(table_name)
        with self.transaction(f"get_list_columns({table_name!r})") as cursor:
            cursor.execute(
                "SELECT attname, atttypid::regtype::text FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
                " ORDER BY attnum",
                (sql.Identifier("public", table_name).as_string(cursor),),
            )
            return [[name, kind] for name, kind in cursor.fetchall()]

    def new_column(
        self,
        table_name: str,
        column_name: str,
        data_type: DataType | str,
        constraints: Sequence[Constraint | str] | None = None,
    ) -> None:
        """Add a column if it does not exist yet (a no-op when it does).

        Raises
        ------
        ValueError
            An invalid name, type or constraint.
        psycopg2.IntegrityError
            The table does not exist.
        """
        table = ident(table_name, "table name")
        column = ident(column_name, "column name")
        kind = DataType.parse(data_type)
        checks = [Constraint.parse(c).sql(column_name) for c in constraints or []]
        self._require_table(table_name)
        if self.check_column(table_name, column_name):
            log.debug("Column %r of %r already exists", column_name, table_name)
            return
        query = sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
            table, column, sql.SQL(kind.value)
        )
        if checks:
            query = sql.SQL(" ").join([query, *checks])
        with self.transaction(f"new_column({table_name!r}, {column_name!r})") as cursor:
            cursor.execute(query)
        log.info("Column %r (%s) added to %r", column_name, kind.value, table_name)

    def create_database(self, db_name: str, owner: str = "postgres") -> None:
        """Create database ``db_name`` owned by ``owner``, if it does not exist."""
        name = ident(db_name, "database name")
        self.require_connection()
        with self.transaction("create_database check") as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db_name,))
            if cursor.fetchone() is not None:
                return
        with self.autocommit() as cursor:  # CREATE DATABASE cannot run in a transaction
            owner_name = ident(owner, "owner")
            cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(name, owner_name))
