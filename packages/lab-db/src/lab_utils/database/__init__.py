"""PostgreSQL/TimescaleDB interface: tables, columns, safe inserts, batch ingest.

Part of the lab-utils suite; distribution ``lab-db``.
"""

from lab_utils.database.__about__ import __version__

__all__ = ["__version__"]
