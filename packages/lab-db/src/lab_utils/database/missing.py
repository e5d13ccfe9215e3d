"""A table or column that does not exist: the errors, and the words that say what to do.

Every call that finds a table or column missing (the schema calls, the writers' column
checks, the read-back) raises these, worded here, so each says it the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import psycopg2
import psycopg2.errors


class MissingTableError(psycopg2.errors.UndefinedTable, psycopg2.IntegrityError):
    """A call named a table that does not exist; the message says what to do.

    Both the server's error (``psycopg2.errors.UndefinedTable``, a ``ProgrammingError``,
    ``pgcode`` ``42P01``) and the ``psycopg2.IntegrityError`` 0.4/0.5 raised for a missing
    table: handlers written for either catch it.

    Attributes
    ----------
    table : str
        The table.
    """

    pgcode = "42P01"

    def __init__(self, message: str, table: str) -> None:
        super().__init__(message)
        self.table = table


class MissingColumnError(psycopg2.errors.UndefinedColumn, psycopg2.IntegrityError):
    """A call named a column its table does not have; the message lists the columns.

    Both the server's error (``psycopg2.errors.UndefinedColumn``, a ``ProgrammingError``,
    ``pgcode`` ``42703``) and a ``psycopg2.IntegrityError``, as :class:`MissingTableError`.

    Attributes
    ----------
    table : str
        The table.
    columns : list of str
        The columns asked for that it does not have.
    """

    pgcode = "42703"

    def __init__(self, message: str, table: str, columns: list[str]) -> None:
        super().__init__(message)
        self.table = table
        self.columns = columns


def missing_table(table: str, place: str, tables: Iterable[str]) -> MissingTableError:
    """Return the error for ``table`` missing from ``place``, naming the closest ``tables``.

    Parameters
    ----------
    table : str
        The table asked for.
    place : str
        Where it was looked for: ``database 'x' on host:port``.
    tables : iterable of str
        The tables there (empty when they could not be listed).
    """
    import difflib  # only when a name is wrong: it costs at import

    close = difflib.get_close_matches(table, list(tables), n=3)
    similar = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return MissingTableError(
        f"table {table!r} does not exist in {place}{similar}: check the name, or create it"
        f" with create_timescale_db({table!r})",
        table,
    )


def missing_columns(
    table: str,
    place: str,
    found: Sequence[str],
    wanted: Iterable[str],
    reasons: Mapping[str, str] | None = None,
) -> MissingColumnError | None:
    """Return the error for the ``wanted`` columns ``table`` lacks, or None when it has all.

    Parameters
    ----------
    table : str
        The table.
    place : str
        Where it is: ``database 'x' on host:port``.
    found : sequence of str
        The table's columns, in order.
    wanted : iterable of str
        The columns asked for.
    reasons : mapping of str to str, optional
        Why a column is needed (``{"time": "read-back orders rows by time"}``), said when
        it is missing.
    """
    missing = [name for name in dict.fromkeys(wanted) if name not in found]
    if not missing:
        return None
    why = reasons or {}
    need = "".join(f" ({why[name]})" for name in missing if name in why)
    return MissingColumnError(
        f"table {table!r} has no column {', '.join(map(repr, missing))}{need}"
        f" (columns: {', '.join(found)}) in {place}: check the name, or add it with"
        f" new_column({table!r}, {missing[0]!r}, DataType...)",
        table,
        missing,
    )
