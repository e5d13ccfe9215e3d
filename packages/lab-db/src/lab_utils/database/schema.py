"""Tables, columns and databases: checks, creation and the column types of a table."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg2
from psycopg2 import sql

from lab_utils.database.connection import Connection
from lab_utils.database.identifiers import checked_name, ident
from lab_utils.database.missing import MissingTableError, missing_columns, missing_table
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

    def _place(self) -> str:
        """Return ``database 'x' on host:port``, the place a missing name is missing from."""
        return f"database {self.database!r} on {self.host}:{self.port}"

    def _missing_table(self, table_name: str) -> MissingTableError:
        """Return the error for ``table_name`` missing, naming the closest existing tables."""
        try:
            with self.transaction("listing tables") as cursor:
                cursor.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
                tables = [name for (name,) in cursor.fetchall()]
        except psycopg2.Error:  # the error itself matters more than the suggestion
            tables = []
        return missing_table(table_name, self._place(), tables)

    def _refused(self, what: str, error: psycopg2.Error) -> psycopg2.Error:
        """Log ``error`` once at ERROR (as a failed statement is) and return it to raise."""
        if self.log_failures:
            log.error("%s failed: %s", what, error)
        return error

    def _require_table(self, table_name: str, what: str | None = None) -> None:
        """Raise :class:`MissingTableError` (logged once) unless ``table_name`` exists.

        ``what`` names the call for the ERROR record.
        """
        if not self.check_table(table_name):
            missing = self._missing_table(table_name)
            raise self._refused(what or f"using table {table_name!r}", missing)

    def _columns_of(self, table_name: str) -> dict[str, str]:
        """Return ``{column: type}`` of ``table_name``; empty when there is no such table."""
        checked_name(table_name, "table name")
        with self.transaction(f"column_types({table_name!r})") as cursor:
            cursor.execute(_TABLE_COLUMNS, (table_name,))
            return dict(cursor.fetchall())

    def table_columns(self, table_name: str) -> dict[str, str]:
        """Return ``{column: type}`` of ``table_name`` in column order (``format_type`` names).

        Raises
        ------
        MissingTableError
            The table does not exist (an ``IntegrityError``).
        """
        found = self._columns_of(table_name)
        if not found:
            missing = self._missing_table(table_name)
            raise self._refused(f"table_columns({table_name!r})", missing)
        return found

    def column_types(self, table_name: str, columns: Sequence[str]) -> list[str]:
        """Return the PostgreSQL type names of ``columns`` of ``table_name``.

        Raises
        ------
        MissingTableError
            The table does not exist (an ``IntegrityError``).
        MissingColumnError
            The table has not every one of ``columns`` (an ``IntegrityError``).
        """
        found = self._require_columns(table_name, columns, f"column_types({table_name!r})")
        return [found[c] for c in columns]

    def _require_columns(
        self, table_name: str, columns: Sequence[str], what: str
    ) -> dict[str, str]:
        """Return ``{column: type}`` of ``table_name`` once it has every one of ``columns``.

        Raises :class:`MissingTableError` or :class:`MissingColumnError`, logged once as
        ``what`` failing.
        """
        found = self._columns_of(table_name)
        missing = (
            self._missing_table(table_name)
            if not found
            else missing_columns(table_name, self._place(), list(found), columns)
        )
        if missing is not None:
            raise self._refused(what, missing)
        return found

    def get_list_columns(self, table_name: str) -> list[list[str]]:
        """Return the columns of ``table_name`` as ``[name, type]`` pairs, in order (0.5).

        Types are PostgreSQL's names (``'double precision'``, ``'timestamp with time
        zone'``).

        Raises
        ------
        psycopg2.DatabaseError
            Not connected.
        MissingTableError
            The table does not exist (an ``IntegrityError``, as in 0.5).
        """
        self.require_connection()
        self._require_table(table_name, f"get_list_columns({table_name!r})")
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
        MissingTableError
            The table does not exist (an ``IntegrityError``, as in 0.4/0.5).
        """
        table = ident(table_name, "table name")
        column = ident(column_name, "column name")
        kind = DataType.parse(data_type)
        checks = [Constraint.parse(c).sql(column_name) for c in constraints or []]
        self._require_table(table_name, f"new_column({table_name!r}, {column_name!r})")
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
