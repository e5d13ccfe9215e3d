"""The ``Database`` class: the 0.4/0.5 API on psycopg2, with safe SQL and DAQ ingest.

``Database`` is a facade over one module per job:

- :mod:`~lab_utils.database.connection`: settings, the connection, transactions;
- :mod:`~lab_utils.database.schema`: tables, columns, databases;
- :mod:`~lab_utils.database.timescale`: hypertables, aggregate views, policies;
- :mod:`~lab_utils.database.ingest`: single rows, binary COPY, updates;
- :mod:`~lab_utils.database.readback`: latest rows, ranges, averages, selections.
"""

from __future__ import annotations

from lab_utils.database.connection import NOT_CONNECTED
from lab_utils.database.ingest import Ingest
from lab_utils.database.missing import MissingColumnError, MissingTableError
from lab_utils.database.readback import ReadBack
from lab_utils.database.timescale import TimescaleEditionError, TimescaleUnavailableError

__all__ = [
    "NOT_CONNECTED",
    "Database",
    "MissingColumnError",
    "MissingTableError",
    "TimescaleEditionError",
    "TimescaleUnavailableError",
]


class Database(Ingest, ReadBack):
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
        The config file is missing, lacks the section or an option, or holds a bad value.
    """
