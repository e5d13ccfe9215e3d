"""Settings, the connection and transactions: the base every part of ``Database`` stands on."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import psycopg2
import psycopg2.extensions

log = logging.getLogger("lab_utils.database.database")

NOT_CONNECTED = "Trying to access database without initialization"
"""Message of the DatabaseError raised when no connection is open (as in 0.4)."""

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    _Self = TypeVar("_Self", bound="Connection")


class Connection:
    """Connection settings, one open connection and transactions on it.

    The base of :class:`~lab_utils.database.Database`, which documents the parameters.
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
        self.log_failures = True
        """Log statements the server refuses at ERROR (a caller reporting them itself
        turns this off, so that one failure is one record)."""

    def config(self, config_file: str) -> None:
        """Read ``[Overall]`` host, port, database, user and passfile from ``config_file``.

        Unknown sections and options are logged as warnings naming the closest known name.

        Raises
        ------
        configparser.Error
            The file is missing, the section or an option is missing, or a value is bad
            (see :func:`~lab_utils.database.config.read_database_config`).
        """
        # configparser, difflib and pathlib are imported only by a program reading a file.
        from lab_utils.database.config import read_database_config

        try:
            settings = read_database_config(config_file)
        except Exception as error:
            log.error("%s: %s", type(error).__name__, error)
            raise
        for name, value in settings.items():
            setattr(self, name, value)
        log.debug("Configuration loaded from %s", config_file)

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
        self._connected()

    def _connected(self) -> None:
        """Forget what was learnt about the previous connection (a hook)."""

    def connection_parameters(self) -> dict[str, Any]:
        """Return the libpq parameters this object connects with (for other connections)."""
        params: dict[str, Any] = {
            "dbname": self.database, "user": self.user, "host": self.host, "port": self.port,
            "connect_timeout": self.connect_timeout, "application_name": "lab_utils.database",
        }  # fmt: skip
        # os.path, not pathlib: pathlib is 2.6 ms of the import a DAQ script pays for.
        passfile = os.path.expanduser(self.passfile)  # noqa: PTH111
        if os.path.exists(passfile):  # noqa: PTH110
            params["passfile"] = passfile
        return params

    def clone(self: _Self, connect: bool = True) -> _Self:
        """Return a new object with the same settings and a connection of its own.

        For a second thread (the buffered writer) or a second transaction alongside this
        one; the embedded server, if any, stays owned by this object.

        Parameters
        ----------
        connect : bool, optional
            Connect the new object before returning it.

        Raises
        ------
        psycopg2.Error
            ``connect`` and the server is unreachable or refuses the login.
        """
        other = type(self)(host=self.host, port=self.port, database=self.database,
                           user=self.user, passfile=self.passfile,
                           connect_timeout=self.connect_timeout)  # fmt: skip
        if connect:
            other.connect()
        return other

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

    def __enter__(self: _Self) -> _Self:
        """Connect if needed and return self."""
        if self.connection is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the connection."""
        self.close()

    def require_connection(self) -> psycopg2.extensions.connection:
        """Return the open connection.

        Raises
        ------
        psycopg2.DatabaseError
            Not connected (the 0.4 message).
        """
        if self.connection is None or self.connection.closed:
            raise psycopg2.DatabaseError(NOT_CONNECTED)
        return self.connection

    @contextlib.contextmanager
    def transaction(self, what: str = "transaction") -> Iterator[psycopg2.extensions.cursor]:
        """Run a block in one transaction: commit on success, roll back on any error.

        Parameters
        ----------
        what : str, optional
            What the block does, for the ERROR record when the server refuses it.

        Yields
        ------
        psycopg2.extensions.cursor
            A cursor of this connection, closed at the end of the block.

        Raises
        ------
        psycopg2.DatabaseError
            Not connected.

        Examples
        --------
        >>> with db.transaction("move run 7") as cursor:   # doctest: +SKIP
        ...     cursor.execute("UPDATE runs SET state = %s WHERE id = %s", ("done", 7))
        """
        connection = self.require_connection()
        try:
            with connection.cursor() as cursor:
                yield cursor
            connection.commit()
        except BaseException as error:
            with contextlib.suppress(psycopg2.Error):
                connection.rollback()
            # A lost connection is the caller's story (the writer's outage report).
            if (
                self.log_failures
                and isinstance(error, psycopg2.Error)
                and not isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError))
            ):
                log.error("%s failed: %s", what, str(error).strip())
            raise

    _transaction = transaction  # the name of 1.0.0 pre-releases

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[psycopg2.extensions.cursor]:
        """Run statements outside a transaction (CREATE DATABASE, continuous aggregates)."""
        connection = self.require_connection()
        previous = connection.autocommit
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                yield cursor
        finally:
            connection.autocommit = previous

    def __del__(self) -> None:
        """Close the connection when the object goes away."""
        with contextlib.suppress(Exception):
            if self.connection is not None:
                self.connection.close()
