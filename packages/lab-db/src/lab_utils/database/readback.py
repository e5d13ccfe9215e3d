"""Reading back: latest rows, time ranges, time-bucketed averages and selections."""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator, Mapping, Sequence

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

from lab_utils.database.identifiers import ident
from lab_utils.database.missing import (
    MissingColumnError as MissingColumnError,  # defined here first: this import still works
)
from lab_utils.database.missing import (
    MissingTableError as MissingTableError,
)
from lab_utils.database.missing import missing_columns
from lab_utils.database.timescale import Timescale, checked_interval

log = logging.getLogger("lab_utils.database.database")

_BY_TIME = {"time": "read-back orders rows by time"}
"""Why a read-back needs ``time``, said when a table lacks it."""

OPERATORS = ("=", "!=", "<>", "<", "<=", ">", ">=")
"""Comparisons :meth:`ReadBack.select_entries` accepts in ``(column, operator, value)``."""

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    # One condition of ReadBack.select_entries: (column, operator, value).
    Condition = tuple[str, str, Any]


class _UndefinedError(Exception):
    """An undefined table or column, carried out of the transaction unlogged.

    The transaction logs psycopg2 errors only; this one is diagnosed after the rollback and
    reported once, clearly.
    """

    def __init__(self, error: psycopg2.Error) -> None:
        super().__init__(str(error))
        self.error = error


def _as_result(
    names: list[str], rows: list[tuple[Any, ...]], as_frame: bool
) -> list[dict[str, Any]] | Any:
    if not as_frame:
        return [dict(zip(names, row, strict=True)) for row in rows]
    try:
        pandas = importlib.import_module("pandas")  # optional: only when asked for
    except ImportError:
        raise ImportError(
            "as_frame=True needs pandas, which is not installed: pip install pandas,"
            " or take the rows as dictionaries (as_frame=False)"
        ) from None
    return pandas.DataFrame(data=rows, columns=names)


def _where(
    conditions: Mapping[str, Any] | Sequence[Condition] | None,
) -> tuple[sql.Composable, list[Any], list[str]]:
    """Return the WHERE clause, its values and the columns it names."""
    if not conditions:
        return sql.SQL(""), [], []
    triples: list[Condition] = (
        [(c, "=", v) for c, v in conditions.items()]
        if isinstance(conditions, Mapping)
        else [tuple(c) for c in conditions]
    )
    parts: list[sql.Composable] = []
    values: list[Any] = []
    for triple in triples:
        if len(triple) != 3:
            raise ValueError(f"condition {triple!r} is not (column, operator, value)")
        column, operator, value = triple
        if operator not in OPERATORS:
            raise ValueError(f"operator {operator!r} is not one of {', '.join(OPERATORS)}")
        name = ident(column, "column name")
        if value is None and operator in ("=", "!=", "<>"):
            test = "IS NULL" if operator == "=" else "IS NOT NULL"
            parts.append(sql.SQL("{} " + test).format(name))
        else:
            parts.append(sql.SQL("{} " + operator + " %s").format(name))
            values.append(value)
    names = [str(triple[0]) for triple in triples]
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts), values, names


class ReadBack(Timescale):
    """Queries returning rows.

    A table or column that does not exist is a :class:`MissingTableError` or
    :class:`MissingColumnError` naming it and saying what to do, logged once at ERROR; the
    failed statement is rolled back, so the connection goes on working.
    """

    def fetch_latest_value(
        self, table_name: str, column_name: Sequence[str] | None = None
    ) -> tuple[Any, ...] | None:
        """Return the most recent row: ``(time, value, ...)``, or None when the table is empty.

        Parameters
        ----------
        table_name : str
            The table.
        column_name : list of str, optional
            The columns to return after ``time`` (all columns by default), as in 0.5.

        Raises
        ------
        MissingTableError
            The table does not exist (an ``IntegrityError``, as in 0.5).
        MissingColumnError
            The table has no ``time`` column, or not one of ``column_name``.
        """
        rows = self.fetch_latest(table_name, column_name, limit=1)
        return tuple(rows[0]) if rows else None

    def fetch_latest(
        self, table_name: str, columns: Sequence[str] | None = None, limit: int = 10
    ) -> list[tuple[Any, ...]]:
        """Return the ``limit`` most recent rows (newest first), ``time`` plus ``columns``.

        Raises
        ------
        MissingTableError, MissingColumnError
            The table, its ``time`` column or one of ``columns`` does not exist.
        """
        query = sql.SQL("SELECT {} FROM {} ORDER BY time DESC LIMIT %s").format(
            self._select_list(columns), ident(table_name, "table name")
        )
        with self._reading("fetch_latest", table_name, ["time", *(columns or ())]) as cursor:
            cursor.execute(query, (int(limit),))
            return list(cursor.fetchall())

    def fetch_range(
        self, table_name: str, start: Any, end: Any, columns: Sequence[str] | None = None
    ) -> list[tuple[Any, ...]]:
        """Return rows with ``start <= time < end``, oldest first.

        Raises
        ------
        MissingTableError, MissingColumnError
            The table, its ``time`` column or one of ``columns`` does not exist.
        """
        query = sql.SQL("SELECT {} FROM {} WHERE time >= %s AND time < %s ORDER BY time").format(
            self._select_list(columns), ident(table_name, "table name")
        )
        with self._reading("fetch_range", table_name, ["time", *(columns or ())]) as cursor:
            cursor.execute(query, (start, end))
            return list(cursor.fetchall())

    def fetch_averages(
        self,
        table_name: str,
        columns: Sequence[str],
        bucket: str = "1 minute",
        start: Any = None,
        end: Any = None,
    ) -> list[tuple[Any, ...]]:
        """Return time-bucketed averages of ``columns``: ``(bucket start, avg, ...)`` rows.

        ``bucket`` is an interval such as ``'10 seconds'`` or ``'1 hour'``; TimescaleDB's
        ``time_bucket`` where installed (either edition), ``date_bin`` otherwise.

        Raises
        ------
        MissingTableError, MissingColumnError
            The table, its ``time`` column or one of ``columns`` does not exist.
        """
        checked_interval(bucket, "bucket")
        function = (
            sql.SQL("time_bucket(%s::interval, time)")
            if self.timescale_version()
            else sql.SQL("date_bin(%s::interval, time, TIMESTAMPTZ '2000-01-01')")
        )
        averages = sql.SQL(", ").join(
            sql.SQL("avg({})").format(ident(c, "column name")) for c in columns
        )
        where = sql.SQL(
            "WHERE time >= coalesce(%s::timestamptz, '-infinity')"
            " AND time < coalesce(%s::timestamptz, 'infinity')"
        )
        query = sql.SQL("SELECT {} AS bucket, {} FROM {} {} GROUP BY 1 ORDER BY 1").format(
            function, averages, ident(table_name, "table name"), where
        )
        with self._reading("fetch_averages", table_name, ["time", *columns]) as cursor:
            cursor.execute(query, (bucket, start, end))
            return list(cursor.fetchall())

    @staticmethod
    def _select_list(columns: Sequence[str] | None) -> sql.Composable:
        if columns is None:
            return sql.SQL("*")
        return sql.SQL(", ").join(
            [sql.Identifier("time"), *(ident(c, "column name") for c in columns if c != "time")]
        )

    @contextlib.contextmanager
    def _reading(
        self, what: str, table_name: str, names: Sequence[str]
    ) -> Iterator[psycopg2.extensions.cursor]:
        """Run a read-back in a transaction; a missing table or column is said clearly.

        ``names`` are the columns the statement reads. The server's undefined-table or
        -column error is carried out of the transaction (rolled back, not logged there) and
        turned into the error :meth:`_missing` words, logged once.
        """
        try:
            with self.transaction(f"{what}({table_name!r})") as cursor:
                try:
                    yield cursor
                except (psycopg2.errors.UndefinedTable, psycopg2.errors.UndefinedColumn) as error:
                    raise _UndefinedError(error) from error
        except _UndefinedError as undefined:
            failure = self._missing(table_name, names, undefined.error)
            raise self._refused(f"{what}({table_name!r})", failure) from None

    def _missing(
        self, table_name: str, names: Sequence[str], error: psycopg2.Error
    ) -> psycopg2.Error:
        """Return the error that says which of the table and ``names`` is missing.

        The server's own error when neither is (it named something else, or the table was
        created meanwhile); it too when the connection fails while looking.
        """
        try:
            found = self._columns_of(table_name)
        except psycopg2.Error:
            return error
        if not found:
            return self._missing_table(table_name)
        missing = missing_columns(table_name, self._place(), list(found), names, _BY_TIME)
        return error if missing is None else missing

    def check_empty_table(self, table_name: str) -> bool:
        """Return True when ``table_name`` holds no row (0.5).

        Raises
        ------
        psycopg2.DatabaseError
            Not connected.
        MissingTableError
            The table does not exist (an ``IntegrityError``, as in 0.5).
        """
        self.require_connection()
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(ident(table_name, "table name"))
        with self._reading("check_empty_table", table_name, []) as cursor:
            cursor.execute(query)
            return not cursor.fetchone()[0]  # type: ignore[index]

    def fetch_next_serial_id(self, table_name: str) -> int:
        """Return the next free ``id`` of a table with a serial ``id`` column (0.5).

        1 when the table is empty, else the last value of the ``id`` sequence plus one.

        Raises
        ------
        psycopg2.DatabaseError
            Not connected.
        MissingTableError
            The table does not exist (an ``IntegrityError``, as in 0.5).
        psycopg2.IntegrityError
            The table has no ``id`` column with a sequence: not a column
            :meth:`new_column` could add, so not a :class:`MissingColumnError`.
        """
        self.require_connection()
        if self.check_empty_table(table_name):
            return 1
        if not self.check_column(table_name, "id"):
            refused = psycopg2.IntegrityError(f"table {table_name!r} has no serial 'id' column")
            raise self._refused(f"fetch_next_serial_id({table_name!r})", refused)
        with self.transaction(f"fetch_next_serial_id({table_name!r})") as cursor:
            cursor.execute(
                "SELECT pg_get_serial_sequence(%s, 'id')",
                (sql.Identifier(table_name).as_string(cursor),),
            )
            sequence = cursor.fetchone()[0]  # type: ignore[index]
            if sequence is None:
                raise psycopg2.IntegrityError(
                    f"table {table_name!r} has no serial 'id' column (no sequence)"
                )
            # pg_get_serial_sequence returns the sequence name already quoted.
            cursor.execute(sql.SQL("SELECT last_value FROM {}").format(sql.SQL(sequence)))
            return int(cursor.fetchone()[0]) + 1  # type: ignore[index]

    def retrieve_entries(
        self, table_name: str, conditions: str | Sequence[str], *, as_frame: bool = False
    ) -> list[dict[str, Any]] | Any:
        """Return the rows of ``table_name`` meeting raw SQL ``conditions`` (0.5).

        **For trusted code only**: ``conditions`` are SQL text joined with ``AND`` and sent
        as written, exactly as 0.5 did. Never pass text from users, files or the network;
        use :meth:`select_entries`, which takes values as parameters, instead.

        Parameters
        ----------
        table_name : str
            The table (quoted: any name is safe).
        conditions : str or list of str
            SQL conditions such as ``"id = 3"``.
        as_frame : bool, optional
            Return a pandas DataFrame, as 0.5 did (needs pandas installed).

        Returns
        -------
        list of dict or pandas.DataFrame
            One ``{column: value}`` dictionary per row, or the DataFrame.

        Raises
        ------
        psycopg2.DatabaseError
            Not connected.
        MissingTableError
            The table does not exist (an ``IntegrityError``, as in 0.5).
        psycopg2.Error
            The conditions are not valid SQL for this table.
        """
        texts = [conditions] if isinstance(conditions, str) else list(conditions)
        if not texts:
            raise ValueError("no conditions: use select_entries() to read every row")
        where = sql.SQL(" AND ").join(sql.SQL("({})").format(sql.SQL(text)) for text in texts)
        query = sql.SQL("SELECT * FROM {} WHERE {}").format(ident(table_name, "table name"), where)
        return self._entries("retrieve_entries", table_name, [], query, [], as_frame)

    def _entries(
        self,
        what: str,
        table_name: str,
        columns: Sequence[str],
        query: sql.Composable,
        values: list[Any],
        as_frame: bool,
    ) -> list[dict[str, Any]] | Any:
        self.require_connection()
        with self._reading(what, table_name, columns) as cursor:
            cursor.execute(query, values)
            names = [d[0] for d in cursor.description or ()]
            rows = list(cursor.fetchall())
        return _as_result(names, rows, as_frame)

    def select_entries(
        self,
        table_name: str,
        where: Mapping[str, Any] | Sequence[Condition] | None = None,
        columns: Sequence[str] | None = None,
        *,
        order_by: str | None = None,
        limit: int | None = None,
        as_frame: bool = False,
    ) -> list[dict[str, Any]] | Any:
        """Return the rows of ``table_name`` meeting ``where``; names quoted, values parameters.

        The safe form of :meth:`retrieve_entries`.

        Parameters
        ----------
        table_name : str
            The table.
        where : mapping or sequence of (column, operator, value), optional
            ``{"id": 3}`` for equality, or triples such as ``("time", ">=", start)`` with an
            operator from :data:`OPERATORS`; all must hold. ``None`` values with ``=`` or
            ``!=`` test for NULL.
        columns : sequence of str, optional
            The columns to return (all by default).
        order_by : str, optional
            A column to sort by (ascending).
        limit : int, optional
            At most this many rows.
        as_frame : bool, optional
            Return a pandas DataFrame (needs pandas installed).

        Returns
        -------
        list of dict or pandas.DataFrame
            One ``{column: value}`` dictionary per row, or the DataFrame.

        Raises
        ------
        ValueError
            An impossible name, an unknown operator or a malformed condition.
        MissingTableError
            The table does not exist (an ``IntegrityError``).
        MissingColumnError
            A column of ``where``, ``columns`` or ``order_by`` does not exist.
        """
        table = ident(table_name, "table name")
        selected = (
            sql.SQL("*")
            if columns is None
            else sql.SQL(", ").join(ident(c, "column name") for c in columns)
        )
        condition, values, named = _where(where)
        query = sql.SQL("SELECT {} FROM {}{}").format(selected, table, condition)
        if order_by is not None:
            query += sql.SQL(" ORDER BY {}").format(ident(order_by, "column name"))
        if limit is not None:
            query += sql.SQL(" LIMIT %s")
            values.append(int(limit))
        named += [*(columns or ()), *([] if order_by is None else [order_by])]
        return self._entries("select_entries", table_name, named, query, values, as_frame)
