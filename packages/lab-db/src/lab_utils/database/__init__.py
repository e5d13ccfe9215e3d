"""PostgreSQL/TimescaleDB for lab data: safe SQL, batch ingest, a buffered writer.

Part of the lab-utils suite; distribution ``lab-db``. Compatible with the
``lab_utils.database`` of lab_utils 0.4/0.5; only psycopg2 is required.
"""

from __future__ import annotations

from lab_utils.database.__about__ import __version__
from lab_utils.database.column_types import ColumnType, column_type, value_from_text
from lab_utils.database.database import (
    NOT_CONNECTED,
    Database,
    MissingColumnError,
    MissingTableError,
    TimescaleEditionError,
    TimescaleUnavailableError,
)
from lab_utils.database.identifiers import checked_name
from lab_utils.database.sql_types import Constraint, DataType

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lab_utils.database.config import ConfigFileNotFoundError, ConfigValueError
    from lab_utils.database.embedded import (
        EmbeddedError,
        EmbeddedPostgres,
        embedded_database,
        reachable_temp_dir,
        start_embedded,
    )
    from lab_utils.database.writer import BufferedWriter, WriterStats

# What a DAQ node writing rows with Database.new_entry never uses is imported on first use
# of its name: the embedded server (subprocess, shutil, tempfile, pwd, hashlib), the
# buffered writer (threads, uuid, the spool, the COPY encoder) and the config file reader
# (configparser, difflib, pathlib).
_LAZY = {
    "EmbeddedError": "embedded",
    "EmbeddedPostgres": "embedded",
    "embedded_database": "embedded",
    "reachable_temp_dir": "embedded",
    "start_embedded": "embedded",
    "BufferedWriter": "writer",
    "WriterStats": "writer",
    "ConfigFileNotFoundError": "config",
    "ConfigValueError": "config",
}


def __getattr__(name: str) -> Any:
    """Import the names of the modules loaded on demand when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    """List the public names with the ones imported on demand."""
    return sorted(set(globals()) | set(_LAZY))


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
    "MissingColumnError",
    "MissingTableError",
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
