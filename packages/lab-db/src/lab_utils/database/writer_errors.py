"""What the buffered writer tells apart when a write fails, and how it words a failure."""

from __future__ import annotations

import psycopg2

CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)
"""Errors of the link, not of the rows: the batch waits in the spool for the server."""


class UnavailableError(Exception):
    """The database cannot take rows now (unreachable, login refused, table missing)."""


def reason_of(error: BaseException) -> str:
    """One line: libpq's or the server's message, or the exception's with its type."""
    text = " ".join(str(error).split())
    if isinstance(error, (psycopg2.Error, UnavailableError)):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
