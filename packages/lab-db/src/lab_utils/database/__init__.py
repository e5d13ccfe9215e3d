"""PostgreSQL/TimescaleDB for lab data: safe SQL, batch ingest, a buffered writer.

Part of the lab-utils suite; distribution ``lab-db``. Compatible with the
``lab_utils.database`` of lab_utils 0.4/0.5; only psycopg2 is required.
"""

from lab_utils.database.__about__ import __version__
from lab_utils.database.database import NOT_CONNECTED, Database, TimescaleUnavailableError
from lab_utils.database.embedded import EmbeddedPostgres, embedded_database, start_embedded
from lab_utils.database.identifiers import checked_name
from lab_utils.database.sql_types import Constraint, DataType
from lab_utils.database.writer import BufferedWriter

__all__ = [
    "NOT_CONNECTED",
    "BufferedWriter",
    "Constraint",
    "DataType",
    "Database",
    "EmbeddedPostgres",
    "TimescaleUnavailableError",
    "__version__",
    "checked_name",
    "embedded_database",
    "start_embedded",
]
