"""Table and column names: any text PostgreSQL can hold, always quoted, never truncated."""

from __future__ import annotations

from psycopg2 import sql

MAX_IDENTIFIER_BYTES = 63
"""PostgreSQL silently truncates longer names; we refuse them instead."""


def checked_name(name: object, what: str = "name") -> str:
    """Return ``name`` if PostgreSQL can hold it exactly as given.

    Every name is later quoted with :class:`psycopg2.sql.Identifier`, so quotes,
    semicolons, spaces, unicode and mixed case are harmless and kept as they are; the
    lower-case names of 0.4 map to the same tables and columns as before.

    Parameters
    ----------
    name : object
        The candidate name.
    what : str, optional
        How to call it in the error (``'table name'``, ``'column name'``).

    Returns
    -------
    str
        The name, unchanged.

    Raises
    ------
    ValueError
        Not a string, empty, containing NUL, or longer than 63 bytes in UTF-8.
    """
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a string, not {type(name).__name__}")
    if not name:
        raise ValueError(f"{what} must not be empty")
    if "\x00" in name:
        raise ValueError(f"{what} {name!r} contains a NUL character")
    size = len(name.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"{what} {name[:20]!r}... is {size} bytes long; PostgreSQL keeps at most"
            f" {MAX_IDENTIFIER_BYTES} (it would silently cut it): choose a shorter name"
        )
    return name


def ident(name: object, what: str = "name") -> sql.Identifier:
    """Return ``name`` checked and quoted for SQL."""
    return sql.Identifier(checked_name(name, what))
