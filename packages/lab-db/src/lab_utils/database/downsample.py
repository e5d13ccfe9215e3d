"""Read columns over a time range, bucketed in the database when there are many rows.

A plot needs a few thousand points, not ten million rows: past ``points`` rows the server
groups them into ``points`` buckets (``time_bucket`` on TimescaleDB, ``date_bin`` on
plain PostgreSQL 14+) and returns each bucket's mean, minimum and maximum, so that a
one-sample spike still shows as the band's edge.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence

from psycopg2 import sql

from lab_utils.database.database import Database
from lab_utils.database.identifiers import checked_name
from lab_utils.database.table_info import reading


@dataclasses.dataclass
class Band:
    """One column's ``mean``, ``low`` and ``high`` per point (all three the value when raw)."""

    mean: list[float | None]
    low: list[float | None]
    high: list[float | None]


@dataclasses.dataclass
class Series:
    """Columns over time, as read for a plot.

    Attributes
    ----------
    times : list of datetime
        Row times, or bucket starts.
    columns : dict
        A :class:`Band` per column name.
    bucket : timedelta or None
        Bucket width, or None when these are the rows themselves.
    rows : int
        Rows of the table behind these points.
    """

    times: list[dt.datetime]
    columns: dict[str, Band]
    bucket: dt.timedelta | None
    rows: int


def _ident(name: str, what: str) -> sql.Identifier:
    return sql.Identifier(checked_name(name, what))


def span(db: Database, table: str) -> tuple[dt.datetime, dt.datetime] | None:
    """Return the first and last ``time`` of ``table``, or None when it is empty."""
    query = sql.SQL(
        "SELECT (SELECT time FROM {0} ORDER BY time LIMIT 1),"
        " (SELECT time FROM {0} ORDER BY time DESC LIMIT 1)"
    ).format(_ident(table, "table name"))
    with reading(db) as connection, connection.cursor() as cursor:
        cursor.execute(query)
        first, last = cursor.fetchone() or (None, None)
    return None if first is None else (first, last)


def bucket_width(start: dt.datetime, end: dt.datetime, points: int) -> dt.timedelta:
    """Return the bucket width that cuts ``[start, end)`` into at most ``points`` buckets.

    Rounded up to whole seconds from a second on, to whole milliseconds from a millisecond.
    """
    span_us = max((end - start) // dt.timedelta(microseconds=1), 1)
    width = max(math.ceil(span_us / points), 1)
    # Whole seconds (or milliseconds) read better in a title than 0:08:19.999951.
    for step in (1_000_000, 1_000):
        if width >= step:
            return dt.timedelta(microseconds=math.ceil(width / step) * step)
    return dt.timedelta(microseconds=width)


def read_series(
    db: Database,
    table: str,
    columns: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
    points: int = 2000,
) -> Series:
    """Return ``columns`` of ``table`` with ``start <= time < end``.

    At most ``points`` rows come back as they are; more are bucketed in the server into
    at most ``points`` buckets of mean, minimum and maximum.
    """
    names = [_ident(c, "column name") for c in columns]
    target = _ident(table, "table name")
    within = sql.SQL("WHERE time >= %(start)s AND time < %(end)s")
    timescale = bool(db.timescale_version())
    params: dict[str, object] = {"start": start, "end": end, "limit": points + 1}
    with reading(db) as connection, connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} {} LIMIT %(limit)s) AS probe").format(
                target, within
            ),
            params,
        )
        (probe,) = cursor.fetchone() or (0,)
        if probe <= points:
            cursor.execute(
                sql.SQL("SELECT time, {} FROM {} {} ORDER BY time").format(
                    sql.SQL(", ").join(sql.SQL("{}::float8").format(n) for n in names),
                    target,
                    within,
                ),
                params,
            )
            rows = cursor.fetchall()
            bands = {c: Band(*([r[i + 1] for r in rows],) * 3) for i, c in enumerate(columns)}
            return Series([r[0] for r in rows], bands, None, len(rows))
        width = bucket_width(start, end, points)
        params["width"] = width
        bucket = (
            sql.SQL("time_bucket(%(width)s, time, origin => %(start)s)")
            if timescale
            else sql.SQL("date_bin(%(width)s, time, %(start)s)")
        )
        aggregates = sql.SQL(", ").join(
            sql.SQL("avg({0})::float8, min({0})::float8, max({0})::float8").format(n) for n in names
        )
        cursor.execute(
            sql.SQL("SELECT {} AS bucket, count(*), {} FROM {} {} GROUP BY 1 ORDER BY 1").format(
                bucket, aggregates, target, within
            ),
            params,
        )
        rows = cursor.fetchall()
    bands = {
        c: Band(
            [r[2 + 3 * i] for r in rows], [r[3 + 3 * i] for r in rows], [r[4 + 3 * i] for r in rows]
        )
        for i, c in enumerate(columns)
    }
    return Series([r[0] for r in rows], bands, width, sum(r[1] for r in rows))
