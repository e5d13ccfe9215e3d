"""TimescaleDB: hypertables, aggregate views, retention and compression, on either edition.

TimescaleDB ships in two editions: the Community edition (``timescaledb.license =
'timescale'``) and the Apache-2 edition many distributions package, which has hypertables
and ``time_bucket`` but no continuous aggregates, compression or retention policies. On the
Apache edition and on plain PostgreSQL, :meth:`Timescale.create_aggregate_view` makes a
plain view with the same name and columns; the policies raise an error naming the edition.
"""

from __future__ import annotations

import logging
import re

import psycopg2
from psycopg2 import sql

from lab_utils.database.identifiers import ident
from lab_utils.database.schema import Schema

log = logging.getLogger("lab_utils.database.database")

INTERVAL = re.compile(
    r"^\s*\d+\s*(microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?"
    r"|months?|years?)\s*$"
)
"""Intervals accepted from callers: a count and a unit (``'10 seconds'``, ``'365 days'``)."""

COMMUNITY = "timescale"
"""``timescaledb.license`` of the Community edition (all features)."""
APACHE = "apache"
"""``timescaledb.license`` of the Apache-2 edition."""


class TimescaleUnavailableError(psycopg2.NotSupportedError):
    """TimescaleDB was required but is not installed in this database."""


class TimescaleEditionError(psycopg2.NotSupportedError):
    """The feature needs TimescaleDB's Community edition; the server runs the Apache one."""


def checked_interval(text: str, what: str = "interval") -> str:
    """Return ``text`` if it is an interval like ``'7 days'``, else raise ValueError."""
    if not isinstance(text, str) or not INTERVAL.match(text):
        raise ValueError(f"{what} {text!r} is not an interval like '10 seconds' or '365 days'")
    return text.strip()


class Timescale(Schema):
    """TimescaleDB detection, hypertables, aggregate views and policies."""

    _timescale: tuple[int, ...] | bool | None = False  # False: not asked on this connection
    _edition: str | None = None
    _warned_plain = False

    def _connected(self) -> None:
        self._timescale = False
        self._edition = None

    def timescale_version(self) -> tuple[int, ...] | None:
        """Return the TimescaleDB version installed in this database, or None.

        Creates the extension when the server has it available and the user may.
        """
        if self._timescale is not False:
            return self._timescale  # type: ignore[return-value]
        version: tuple[int, ...] | None = None
        with self.transaction("timescale_version()") as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            row = cursor.fetchone()
            if row is None:
                cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
                available = cursor.fetchone() is not None
            else:
                available = True
        if row is None and available:
            try:
                with self.transaction("CREATE EXTENSION timescaledb") as cursor:
                    cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                    cursor.execute(
                        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
                    )
                    row = cursor.fetchone()
            except psycopg2.Error as error:
                log.warning(
                    "TimescaleDB is available but could not be enabled: %s", str(error).strip()
                )
        if row is not None:
            version = tuple(int(p) for p in re.findall(r"\d+", str(row[0]))[:3])
        self._timescale = version
        return version

    def timescale_edition(self) -> str | None:
        """Return ``'timescale'`` (Community edition), ``'apache'``, or None without TimescaleDB."""
        if self.timescale_version() is None:
            return None
        if self._edition is None:
            with self.transaction("timescale_edition()") as cursor:
                cursor.execute("SELECT current_setting('timescaledb.license', true)")
                row = cursor.fetchone()
            self._edition = str(row[0]) if row and row[0] else COMMUNITY
        return self._edition

    def create_timescale_db(
        self, table_name: str, default_now: bool = True, *, require_timescale: bool = False
    ) -> None:
        """Create a time-series table ``(time TIMESTAMPTZ NOT NULL)``; a hypertable when possible.

        Idempotent (a daemon may call it on every start). With TimescaleDB 2.x (either
        edition) the table becomes a hypertable (the 2.13+ call where available); on plain
        PostgreSQL it gets an index on ``time`` and one warning.

        Parameters
        ----------
        table_name : str
            The table.
        default_now : bool, optional
            ``time`` defaults to the insert time.
        require_timescale : bool, optional
            Raise instead of falling back to a plain table.

        Raises
        ------
        TimescaleUnavailableError
            ``require_timescale`` and no TimescaleDB.
        """
        table = ident(table_name, "table name")
        version = self.timescale_version()
        if version is None and require_timescale:
            raise TimescaleUnavailableError(
                f"TimescaleDB is not installed in database {self.database!r}; install it or"
                " call create_timescale_db(..., require_timescale=False)"
            )
        default = sql.SQL(" DEFAULT now()") if default_now else sql.SQL("")
        with self.transaction(f"create_timescale_db({table_name!r})") as cursor:
            cursor.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} (time TIMESTAMPTZ NOT NULL{})").format(
                    table, default
                )
            )
            if version is None:
                index = ident(f"{table_name[:50]}_time_idx", "index name")
                cursor.execute(
                    sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (time DESC)").format(index, table)
                )
            elif version >= (2, 13):
                cursor.execute(
                    "SELECT create_hypertable(%s::regclass, by_range('time'),"
                    " if_not_exists => TRUE)",
                    (sql.Identifier(table_name).as_string(cursor),),
                )
            else:
                cursor.execute(
                    "SELECT create_hypertable(%s::regclass, 'time', if_not_exists => TRUE)",
                    (sql.Identifier(table_name).as_string(cursor),),
                )
        if version is None and not self._warned_plain:
            self._warned_plain = True
            log.warning(
                "TimescaleDB is not available in %r: time-series tables are plain tables"
                " with an index on time (first: %r)", self.database, table_name,
            )  # fmt: skip

    def _is_continuous_aggregate(self, view_name: str) -> bool:
        if self.timescale_version() is None:
            return False
        with self.transaction("continuous aggregate check") as cursor:
            cursor.execute(
                "SELECT 1 FROM timescaledb_information.continuous_aggregates"
                " WHERE view_schema = 'public' AND view_name = %s",
                (view_name,),
            )
            return cursor.fetchone() is not None

    def create_aggregate_view(
        self, table_name: str, index_name: str = "time", recreate: bool = True
    ) -> str:
        """Create ``<table>_1min``: one-minute averages of every numeric column; return its name.

        A TimescaleDB continuous aggregate on the Community edition; on the Apache edition
        and plain PostgreSQL a plain view with the same name and columns (``<index>`` and
        ``<column>_avg``), computed when read.

        Parameters
        ----------
        table_name : str
            The table.
        index_name : str, optional
            The time column (``time``).
        recreate : bool, optional
            Drop and create the view when it exists (keep it otherwise).

        Raises
        ------
        psycopg2.DataError
            The table has no integer or floating-point column.
        """
        table = ident(table_name, "table name")
        index = ident(index_name, "index column")
        view_name = f"{table_name[:58]}_1min"
        view = ident(view_name, "view name")
        with self.transaction("create_aggregate_view columns") as cursor:
            cursor.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                " AND NOT attisdropped AND atttypid IN"
                " ('integer'::regtype, 'double precision'::regtype,"
                " 'real'::regtype) ORDER BY attnum",
                (sql.Identifier(table_name).as_string(cursor),),
            )
            numeric = [row[0] for row in cursor.fetchall()]
            cursor.execute("SELECT to_regclass(%s)", (sql.Identifier(view_name).as_string(cursor),))
            exists = cursor.fetchone()[0] is not None  # type: ignore[index]
        if not numeric:
            raise psycopg2.DataError(
                f"table {table_name!r} has no integer or floating-point column to average"
            )
        if exists and not recreate:
            return view_name
        averages = sql.SQL(", ").join(
            sql.SQL("avg({}) AS {}").format(
                ident(c, "column name"), ident(f"{c[:59]}_avg", "column name")
            )
            for c in numeric
        )
        version = self.timescale_version()
        continuous = version is not None and self.timescale_edition() == COMMUNITY
        if continuous:
            body = sql.SQL(
                "CREATE MATERIALIZED VIEW {} WITH (timescaledb.continuous) AS"
                " SELECT time_bucket('1 minute', {}) AS {}, {} FROM {} GROUP BY 1 WITH NO DATA"
            ).format(view, index, index, averages, table)
        else:
            body = sql.SQL(
                "CREATE VIEW {} AS SELECT date_trunc('minute', {}) AS {}, {} FROM {} GROUP BY 1"
            ).format(view, index, index, averages, table)
        drop = None
        if exists:
            kind = "MATERIALIZED VIEW" if self._is_continuous_aggregate(view_name) else "VIEW"
            drop = sql.SQL("DROP " + kind + " {}").format(view)
        with self.autocommit() as cursor:  # continuous aggregates refuse transactions
            if drop is not None:
                cursor.execute(drop)
            cursor.execute(body)
        if version is not None and not continuous:
            log.info(
                "%s is a plain view: continuous aggregates need TimescaleDB's Community"
                " edition (this server runs the %s edition)", view_name, self.timescale_edition(),
            )  # fmt: skip
        return view_name

    def _require_community(self, feature: str) -> None:
        edition = self.timescale_edition()
        if edition is None:
            raise TimescaleUnavailableError(
                f"{feature} needs TimescaleDB, which is not installed in database {self.database!r}"
            )
        if edition != COMMUNITY:
            raise TimescaleEditionError(
                f"{feature} needs TimescaleDB's Community edition (timescaledb.license ="
                f" 'timescale'); this server runs the {edition!r} (Apache-2) edition,"
                " which does not have it"
            )

    def set_retention(self, table_name: str, keep: str) -> None:
        """Drop data older than ``keep`` (e.g. ``'365 days'``) from a hypertable, automatically.

        Replaces an earlier retention policy of the table. Runs as a TimescaleDB job.

        Raises
        ------
        ValueError
            ``keep`` is not an interval like ``'365 days'``.
        TimescaleEditionError
            The server runs the Apache-2 edition (no retention policies).
        TimescaleUnavailableError
            No TimescaleDB.
        """
        ident(table_name, "table name")
        interval = checked_interval(keep, "retention")
        self._require_community("a retention policy")
        regclass = sql.Identifier(table_name)
        with self.transaction(f"set_retention({table_name!r})") as cursor:
            name = regclass.as_string(cursor)
            cursor.execute("SELECT remove_retention_policy(%s::regclass, if_exists => TRUE)",
                           (name,))  # fmt: skip
            cursor.execute("SELECT add_retention_policy(%s::regclass, %s::interval)",
                           (name, interval))  # fmt: skip
        log.info("Retention of %r: %s", table_name, interval)

    def set_compression(self, table_name: str, after: str = "7 days") -> None:
        """Compress a hypertable's chunks older than ``after`` (e.g. ``'7 days'``), automatically.

        Enables compression on the table and replaces an earlier compression policy.

        Raises
        ------
        ValueError
            ``after`` is not an interval like ``'7 days'``.
        TimescaleEditionError
            The server runs the Apache-2 edition (no compression).
        TimescaleUnavailableError
            No TimescaleDB.
        """
        table = ident(table_name, "table name")
        interval = checked_interval(after, "compression age")
        self._require_community("compression")
        with self.transaction(f"set_compression({table_name!r})") as cursor:
            name = sql.Identifier(table_name).as_string(cursor)
            cursor.execute(sql.SQL("ALTER TABLE {} SET (timescaledb.compress)").format(table))
            cursor.execute("SELECT remove_compression_policy(%s::regclass, if_exists => TRUE)",
                           (name,))  # fmt: skip
            cursor.execute("SELECT add_compression_policy(%s::regclass, %s::interval)",
                           (name, interval))  # fmt: skip
        log.info("Compression of %r: chunks older than %s", table_name, interval)
