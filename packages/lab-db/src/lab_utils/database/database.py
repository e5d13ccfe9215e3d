"""The ``Database`` class: the 0.4 API on psycopg2, with safe SQL and DAQ ingest."""

from __future__ import annotations

import configparser
import contextlib
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from lab_utils.database.binary_copy import CopyStream, RowEncoder
from lab_utils.database.identifiers import checked_name, ident
from lab_utils.database.sql_types import Constraint, DataType

log = logging.getLogger(__name__)

NOT_CONNECTED = "Trying to access database without initialization"
"""Message of the DatabaseError raised when no connection is open (as in 0.4)."""

_BUCKET = re.compile(
    r"^\s*\d+\s*(microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?)\s*$"
)


class TimescaleUnavailableError(psycopg2.NotSupportedError):
    """TimescaleDB was required but is not installed in this database."""


class Database:
    """A PostgreSQL/TimescaleDB database for time-series data.

    Parameters
    ----------
    config_file : str, optional
        INI file with an ``[Overall]`` section: ``host``, ``port``, ``database``, ``user``,
        ``passfile`` (all required there; passwords only from the pgpass file or libpq).
    host, port, database, user, passfile : optional
        Override the defaults and the file.
    connect_timeout : int, optional
        Seconds allowed to connect (10).

    Raises
    ------
    configparser.Error
        The config file lacks the section or an option.
    """

    host: str = "localhost"
    """Server host name."""
    port: int = 5432
    """Server port."""
    database: str = "beam"
    """Database name."""
    user: str = "cw-beam"
    """User name."""
    passfile: str = "~/.pgpass"
    """pgpass-format password file (``~`` is expanded)."""
    connection: psycopg2.extensions.connection | None = None
    """The open connection, or None."""
    cursor: psycopg2.extensions.cursor | None = None
    """The cursor of the open connection."""
    db_version: str = ""
    """The server's version string, after :meth:`connect`."""

    def __init__(
        self,
        config_file: str | None = None,
        host: str | None = None,
        port: int | None = None,
        database: str | None = None,
        user: str | None = None,
        passfile: str | None = None,
        *,
        connect_timeout: int = 10,
    ) -> None:
        if config_file is not None:
            self.config(config_file)
        for name, value in (("host", host), ("port", port), ("database", database),
                            ("user", user), ("passfile", passfile)):  # fmt: skip
            if value is not None:
                setattr(self, name, int(value) if name == "port" else value)
        self.connect_timeout = connect_timeout
        self.embedded_server: Any = None
        """The embedded server this database runs on, if any (stopped by :meth:`close`)."""
        self._timescale: tuple[int, ...] | bool | None = False  # False: not yet asked
        self._warned_plain = False

    # -- configuration and connection ----------------------------------------------------

    def config(self, config_file: str) -> None:
        """Read ``[Overall]`` host, port, database, user and passfile from ``config_file``.

        Raises
        ------
        configparser.Error
            The file, the section or an option is missing.
        """
        path = Path(config_file).expanduser()
        parser = configparser.ConfigParser()
        if not parser.read(path, encoding="utf-8"):
            raise configparser.NoSectionError(f"Overall (file {path} not found)")
        try:
            self.host = parser.get("Overall", "host")
            self.port = parser.getint("Overall", "port")
            self.database = parser.get("Overall", "database")
            self.user = parser.get("Overall", "user")
            self.passfile = parser.get("Overall", "passfile")
        except configparser.Error as error:
            log.error("%s: %s", type(error).__name__, error)
            raise
        log.debug("Configuration loaded from %s", path)

    def connect(self, print_version: bool = False) -> None:
        """Open the connection and read the server version.

        Parameters
        ----------
        print_version : bool, optional
            Log the version at INFO (DEBUG otherwise).

        Raises
        ------
        psycopg2.Error
            The server is unreachable or refuses the login.
        """
        log.info("Connecting to database %s on host %s over port %s as user %s",
                 self.database, self.host, self.port, self.user)  # fmt: skip
        self.connection = psycopg2.connect(**self.connection_parameters())
        self.cursor = self.connection.cursor()
        self.cursor.execute("SELECT version()")
        row = self.cursor.fetchone()
        self.connection.commit()
        self.db_version = str(row[0]) if row else ""
        log.log(
            logging.INFO if print_version else logging.DEBUG,
            "Connection successful, database version: %s",
            self.db_version,
        )
        self._timescale = False

    def connection_parameters(self) -> dict[str, Any]:
        """Return the libpq parameters this object connects with (for other connections)."""
        params: dict[str, Any] = {
            "dbname": self.database, "user": self.user, "host": self.host, "port": self.port,
            "connect_timeout": self.connect_timeout, "application_name": "lab_utils.database",
        }  # fmt: skip
        passfile = Path(self.passfile).expanduser()
        if passfile.exists():
            params["passfile"] = str(passfile)
        return params

    def close(self) -> None:
        """Close the connection (and stop an embedded server started for it)."""
        if self.connection is not None:
            log.info("Closing connection to %s", self.database)
            self.connection.close()
            self.connection = None
            self.cursor = None
        if self.embedded_server is not None:
            server, self.embedded_server = self.embedded_server, None
            server.stop()

    def __enter__(self) -> Database:
        """Connect if needed and return self."""
        if self.connection is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the connection."""
        self.close()

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[psycopg2.extensions.cursor]:
        """Run a block in one transaction: commit on success, roll back on any error."""
        if self.connection is None or self.connection.closed:
            raise psycopg2.DatabaseError(NOT_CONNECTED)
        connection = self.connection
        try:
            with connection.cursor() as cursor:
                yield cursor
            connection.commit()
        except BaseException as error:
            with contextlib.suppress(psycopg2.Error):
                connection.rollback()
            if isinstance(error, psycopg2.Error):
                log.error("%s failed: %s", what, str(error).strip())
            raise

    # -- checks ------------------------------------------------------------------------

    def check_table(self, table_name: str) -> bool:
        """Tell whether table (or view) ``table_name`` exists in the public schema."""
        checked_name(table_name, "table name")
        with self._transaction(f"check_table({table_name!r})") as cursor:
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
        with self._transaction(f"check_column({table_name!r}, {column_name!r})") as cursor:
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

    # -- TimescaleDB ---------------------------------------------------------------------

    def timescale_version(self) -> tuple[int, ...] | None:
        """Return the TimescaleDB version installed in this database, or None.

        Creates the extension when the server has it available and the user may.
        """
        if self._timescale is not False:
            return self._timescale  # type: ignore[return-value]
        version: tuple[int, ...] | None = None
        with self._transaction("timescale_version()") as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            row = cursor.fetchone()
            if row is None:
                cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
                available = cursor.fetchone() is not None
            else:
                available = True
        if row is None and available:
            try:
                with self._transaction("CREATE EXTENSION timescaledb") as cursor:
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

    def create_timescale_db(
        self, table_name: str, default_now: bool = True, *, require_timescale: bool = False
    ) -> None:
        """Create a time-series table ``(time TIMESTAMPTZ NOT NULL)``; a hypertable when possible.

        Idempotent. With TimescaleDB 2.x the table becomes a hypertable (the 2.13+ call
        where available); on plain PostgreSQL it gets an index on ``time`` and one warning.

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
        with self._transaction(f"create_timescale_db({table_name!r})") as cursor:
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

    # -- columns and rows ------------------------------------------------------------------

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
        with self._transaction(f"new_column({table_name!r}, {column_name!r})") as cursor:
            cursor.execute(query)
        log.info("Column %r (%s) added to %r", column_name, kind.value, table_name)

    def new_entry(
        self,
        table_name: str,
        columns: Sequence[str],
        data: Sequence[Any],
        check_columns: bool = False,
    ) -> None:
        """Insert one row and commit; ``time`` is filled by the table default.

        Raises
        ------
        psycopg2.DataError
            ``columns`` and ``data`` differ in length, or are empty.
        psycopg2.IntegrityError
            With ``check_columns``: the table or a column does not exist.
        psycopg2.DatabaseError
            Not connected.
        """
        if self.connection is None or self.connection.closed:
            raise psycopg2.DatabaseError(NOT_CONNECTED)
        if len(columns) != len(data):
            raise psycopg2.DataError(
                "Data and column lists have different sizes"
                f" ({len(data)} values, {len(columns)} columns)"
            )
        if not columns:
            raise psycopg2.DataError("Empty data")
        if check_columns:
            self._require_table(table_name)
            missing = [c for c in columns if not self.check_column(table_name, c)]
            if missing:
                raise psycopg2.IntegrityError(
                    f"table {table_name!r} has no column {', '.join(map(repr, missing))}:"
                    " add it with new_column()"
                )
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            ident(table_name, "table name"),
            sql.SQL(", ").join(ident(c, "column name") for c in columns),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )
        with self._transaction(f"new_entry({table_name!r})") as cursor:
            cursor.execute(query, list(data))

    def column_types(self, table_name: str, columns: Sequence[str]) -> list[str]:
        """Return the PostgreSQL type names of ``columns`` of ``table_name``.

        Raises
        ------
        psycopg2.IntegrityError
            The table or a column does not exist.
        """
        with self._transaction(f"column_types({table_name!r})") as cursor:
            cursor.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
                " JOIN pg_class c ON c.oid = a.attrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relname = %s"
                " AND a.attnum > 0 AND NOT a.attisdropped",
                (table_name,),
            )
            found = dict(cursor.fetchall())
        if not found:
            raise psycopg2.IntegrityError(f"table {table_name!r} does not exist")
        missing = [c for c in columns if c not in found]
        if missing:
            raise psycopg2.IntegrityError(
                f"table {table_name!r} has no column {', '.join(map(repr, missing))}"
            )
        return [found[c] for c in columns]

    def insert_many(
        self,
        table_name: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        batch: tuple[str, str] | None = None,
    ) -> int:
        """Insert many rows in one transaction with binary COPY; return how many.

        ``columns`` usually starts with ``time``; values are Python numbers, booleans,
        strings, datetimes (naive ones are local time), Unix times for time columns, or None.

        Parameters
        ----------
        table_name : str
            The table.
        columns : sequence of str
            The columns the rows give values for.
        rows : iterable of sequences
            The rows.
        batch : tuple of str, optional
            ``(bookkeeping table, batch id)``: record the id in the same transaction and
            skip the rows (returning 0) if that id was already recorded.

        Raises
        ------
        psycopg2.IntegrityError
            The table or a column does not exist.
        ValueError
            A row of the wrong length or a value of the wrong kind (nothing is written).
        """
        encoder = RowEncoder(self.column_types(table_name, columns))
        stream = CopyStream(encoder, rows)
        query = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)").format(
            ident(table_name, "table name"),
            sql.SQL(", ").join(ident(c, "column name") for c in columns),
        )
        with self._transaction(f"insert_many({table_name!r})") as cursor:
            if batch is not None:
                books = sql.Identifier(batch[0])
                cursor.execute(
                    sql.SQL(
                        "INSERT INTO {} (batch_id, table_name, row_count) VALUES (%s, %s, 0)"
                        " ON CONFLICT (batch_id) DO NOTHING RETURNING 1"
                    ).format(books),
                    (batch[1], table_name),
                )
                if cursor.fetchone() is None:
                    log.info("Batch %s is already in %r: not written twice", batch[1], table_name)
                    return 0
            try:
                cursor.copy_expert(query, stream, size=1 << 20)
            except psycopg2.Error:
                if stream.error is not None:  # a bad row, not the server: say which
                    raise stream.error from None
                raise
            if batch is not None:
                cursor.execute(
                    sql.SQL("UPDATE {} SET row_count = %s WHERE batch_id = %s").format(books),
                    (stream.rows, batch[1]),
                )
        return stream.rows

    # -- reading back ------------------------------------------------------------------

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
        """
        rows = self.fetch_latest(table_name, column_name, limit=1)
        return tuple(rows[0]) if rows else None

    def fetch_latest(
        self, table_name: str, columns: Sequence[str] | None = None, limit: int = 10
    ) -> list[tuple[Any, ...]]:
        """Return the ``limit`` most recent rows (newest first), ``time`` plus ``columns``."""
        selected = self._select_list(columns)
        query = sql.SQL("SELECT {} FROM {} ORDER BY time DESC LIMIT %s").format(
            selected, ident(table_name, "table name")
        )
        with self._transaction(f"fetch_latest({table_name!r})") as cursor:
            cursor.execute(query, (int(limit),))
            return list(cursor.fetchall())

    def fetch_range(
        self, table_name: str, start: Any, end: Any, columns: Sequence[str] | None = None
    ) -> list[tuple[Any, ...]]:
        """Return rows with ``start <= time < end``, oldest first."""
        query = sql.SQL("SELECT {} FROM {} WHERE time >= %s AND time < %s ORDER BY time").format(
            self._select_list(columns), ident(table_name, "table name")
        )
        with self._transaction(f"fetch_range({table_name!r})") as cursor:
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

        ``bucket`` is an interval such as ``'10 seconds'`` or ``'1 hour'``.
        """
        if not _BUCKET.match(bucket):
            raise ValueError(f"bucket {bucket!r} is not an interval like '10 seconds' or '1 hour'")
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
        with self._transaction(f"fetch_averages({table_name!r})") as cursor:
            cursor.execute(query, (bucket, start, end))
            return list(cursor.fetchall())

    @staticmethod
    def _select_list(columns: Sequence[str] | None) -> sql.Composable:
        if columns is None:
            return sql.SQL("*")
        return sql.SQL(", ").join(
            [sql.Identifier("time"), *(ident(c, "column name") for c in columns if c != "time")]
        )

    # -- 0.5 additions -------------------------------------------------------------------

    def create_database(self, db_name: str, owner: str = "postgres") -> None:
        """Create database ``db_name`` owned by ``owner``, if it does not exist."""
        name = ident(db_name, "database name")
        if self.connection is None or self.connection.closed:
            raise psycopg2.DatabaseError(NOT_CONNECTED)
        with self._transaction("create_database check") as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db_name,))
            if cursor.fetchone() is not None:
                return
        autocommit = self.connection.autocommit
        self.connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(name, ident(owner, "owner"))
                )
        finally:
            self.connection.autocommit = autocommit

    def create_aggregate_view(
        self, table_name: str, index_name: str = "time", recreate: bool = True
    ) -> str:
        """Create ``<table>_1min``: one-minute averages of every numeric column; return its name.

        A TimescaleDB continuous aggregate where available, a plain view otherwise.
        """
        table = ident(table_name, "table name")
        index = ident(index_name, "index column")
        view_name = f"{table_name[:58]}_1min"
        view = ident(view_name, "view name")
        with self._transaction("create_aggregate_view columns") as cursor:
            cursor.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                " AND NOT attisdropped AND atttypid IN"
                " ('integer'::regtype, 'double precision'::regtype,"
                " 'real'::regtype) ORDER BY attnum",
                (sql.Identifier(table_name).as_string(cursor),),
            )
            numeric = [row[0] for row in cursor.fetchall()]
        if not numeric:
            raise psycopg2.DataError(
                f"table {table_name!r} has no integer or floating-point column to average"
            )
        averages = sql.SQL(", ").join(
            sql.SQL("avg({}) AS {}").format(
                ident(c, "column name"), ident(f"{c[:59]}_avg", "column name")
            )
            for c in numeric
        )
        version = self.timescale_version()
        if version is not None and version >= (2, 0):
            body = sql.SQL(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS {} WITH (timescaledb.continuous) AS"
                " SELECT time_bucket('1 minute', {}) AS {}, {} FROM {} GROUP BY 1 WITH NO DATA"
            ).format(view, index, index, averages, table)
            drop = sql.SQL("DROP MATERIALIZED VIEW IF EXISTS {}").format(view)
        else:
            body = sql.SQL(
                "CREATE VIEW {} AS SELECT date_trunc('minute', {}) AS {}, {} FROM {} GROUP BY 1"
            ).format(view, index, index, averages, table)
            drop = sql.SQL("DROP VIEW IF EXISTS {}").format(view)
        assert self.connection is not None
        autocommit = self.connection.autocommit
        self.connection.autocommit = True  # continuous aggregates refuse transactions
        try:
            with self.connection.cursor() as cursor:
                if recreate:
                    cursor.execute(drop)
                elif not isinstance(version, tuple):
                    cursor.execute(
                        "SELECT 1 FROM pg_views WHERE schemaname='public' AND viewname=%s",
                        (view_name,),
                    )
                    if cursor.fetchone() is not None:
                        return view_name
                cursor.execute(body)
        finally:
            self.connection.autocommit = autocommit
        return view_name

    def __del__(self) -> None:
        """Close the connection when the object goes away."""
        with contextlib.suppress(Exception):
            if self.connection is not None:
                self.connection.close()
