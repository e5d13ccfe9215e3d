"""PostgreSQL/TimescaleDB for lab data: safe SQL, batch ingest, a buffered writer.

Part of the lab-utils suite; distribution ``lab-db``. Compatible with the
``lab_utils.database`` of lab_utils 0.4/0.5; only psycopg2 is required.
"""

from typing import TYPE_CHECKING, Any

from lab_utils.database.__about__ import __version__
from lab_utils.database.column_types import ColumnType, column_type, value_from_text
from lab_utils.database.config import ConfigFileNotFoundError, ConfigValueError
from lab_utils.database.database import (
    NOT_CONNECTED,
    Database,
    TimescaleEditionError,
    TimescaleUnavailableError,
)
from lab_utils.database.identifiers import checked_name
from lab_utils.database.sql_types import Constraint, DataType
from lab_utils.database.writer import BufferedWriter, WriterStats

if TYPE_CHECKING:
    from lab_utils.database.embedded import (
        EmbeddedError,
        EmbeddedPostgres,
        embedded_database,
        reachable_temp_dir,
        start_embedded,
    )

# The embedded server pulls in subprocess, shutil, tempfile, pwd and hashlib, which a DAQ
# node writing to a real server never uses: its names are imported on first use.
_EMBEDDED = frozenset(
    {
        "EmbeddedError",
        "EmbeddedPostgres",
        "embedded_database",
        "reachable_temp_dir",
        "start_embedded",
    }
)


def __getattr__(name: str) -> Any:
    """Import the embedded server's names when first asked for."""
    if name in _EMBEDDED:
        from lab_utils.database import embedded

        return getattr(embedded, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "NOT_CONNECTED",
    "BufferedWriter",
    "ColumnType",
    "ConfigFileNotFoundError",
    "ConfigValueError",
    "Constraint",
    "DataType",
    "Database",
    "EmbeddedError",
    "EmbeddedPostgres",
    "TimescaleEditionError",
    "TimescaleUnavailableError",
    "WriterStats",
    "__version__",
    "checked_name",
    "column_type",
    "embedded_database",
    "reachable_temp_dir",
    "start_embedded",
    "value_from_text",
]
