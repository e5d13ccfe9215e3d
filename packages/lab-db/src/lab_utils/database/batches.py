"""The bookkeeping table of batch ids: a batch whose commit outcome was lost is not written twice.

Each batch the buffered writer sends carries an id, recorded in ``lab_utils_batches`` in the
same transaction as its rows. Replaying a batch whose id is already there writes nothing.
An id only matters while its batch can still be replayed from a spool, so entries older
than the spool's reach are pruned (:func:`prune`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time (start-up cost)
    from typing import Any

log = logging.getLogger(__name__)

BATCH_TABLE = "lab_utils_batches"
"""Bookkeeping table: one row per batch written by a BufferedWriter."""


def create(cursor: psycopg2.extensions.cursor, table: str = BATCH_TABLE) -> None:
    """Create the bookkeeping table if it does not exist."""
    cursor.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (batch_id uuid PRIMARY KEY,"
            " table_name text NOT NULL, row_count integer NOT NULL,"
            " written_at timestamptz NOT NULL DEFAULT now())"
        ).format(sql.Identifier(table))
    )


def roll_back(connection: Any) -> None:
    """End a failed ``BEGIN; COPY`` query string sent in autocommit, if the link still works.

    psycopg2 does not know of a transaction begun inside a query string (its ``rollback()``
    would do nothing), so the ``ROLLBACK`` is sent as a statement. A link that fails here is
    the caller's error to report, not this one: it is logged at DEBUG only.
    """
    if connection.closed or (
        connection.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    ):
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("ROLLBACK")
    except psycopg2.Error as error:
        log.debug("Rolling back a failed COPY: %s", " ".join(str(error).split()))


def claim(cursor: psycopg2.extensions.cursor, table: str, batch_id: str, data_table: str) -> bool:
    """Record ``batch_id``; False when it was already recorded (the batch is written)."""
    cursor.execute(
        sql.SQL(
            "INSERT INTO {} (batch_id, table_name, row_count) VALUES (%s, %s, 0)"
            " ON CONFLICT (batch_id) DO NOTHING RETURNING 1"
        ).format(sql.Identifier(table)),
        (batch_id, data_table),
    )
    return cursor.fetchone() is not None


def set_count(cursor: psycopg2.extensions.cursor, table: str, batch_id: str, rows: int) -> None:
    """Record how many rows batch ``batch_id`` wrote."""
    cursor.execute(
        sql.SQL("UPDATE {} SET row_count = %s WHERE batch_id = %s").format(sql.Identifier(table)),
        (rows, batch_id),
    )


def claiming(table: str, claims: Sequence[tuple[str, int]], data_table: str) -> sql.Composed:
    """Return the statement recording batch ids with their row counts, as SQL text.

    Sent in one query string with the batches' COPY (``INSERT ...; COPY ...``, or after it
    before the ``COMMIT``): the server runs them in one transaction, so the ids and the
    rows commit together. One statement for all the batches of a COPY (one parse and one
    execution). An id already recorded makes the INSERT fail, which rolls the whole
    transaction back (:func:`already_written` recognises it).
    """
    values = sql.SQL(", ").join(
        sql.SQL("({}, {}, {})").format(
            sql.Literal(batch_id), sql.Literal(data_table), sql.Literal(rows)
        )
        for batch_id, rows in claims
    )
    return sql.SQL("INSERT INTO {} (batch_id, table_name, row_count) VALUES {}").format(
        sql.Identifier(table), values
    )


def already_written(error: BaseException, table: str = BATCH_TABLE) -> bool:
    """Tell whether ``error`` is a :func:`claiming` statement refused: a known batch id."""
    return isinstance(error, psycopg2.errors.UniqueViolation) and error.diag.table_name == table


def prune(
    cursor: psycopg2.extensions.cursor, older_than: dt.timedelta, table: str = BATCH_TABLE
) -> int:
    """Delete entries written more than ``older_than`` ago; return how many."""
    cursor.execute(
        sql.SQL("DELETE FROM {} WHERE written_at < now() - %s").format(sql.Identifier(table)),
        (older_than,),
    )
    return int(cursor.rowcount)
