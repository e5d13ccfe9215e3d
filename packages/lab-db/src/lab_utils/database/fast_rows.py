"""psycopg 3's C row formatter for the binary COPY data (the optional extra ``lab-db[fast]``).

psycopg2 stays the connection users see: only the bytes of the COPY data are made here, a
row per C call, and sent through psycopg2's ``copy_expert`` in the caller's transaction.

Used only for the column types where psycopg 3 gives exactly the bytes of lab-db's own
encoder or refuses the value (then lab-db's encoder takes the chunk and either encodes it
or raises its own error). The types where psycopg 3 would silently differ are left out:
``smallint``/``integer`` (it wraps out-of-range values), ``real`` (it sends ``inf`` for
overflows), ``boolean`` (it accepts ``2``), ``timestamp without time zone`` (it keeps the
wall time of an aware datetime, lab-db converts to UTC like the server does for
``timestamptz``).

``format_row_binary`` is psycopg's internal function behind ``Copy.write_row``; the extra
pins the psycopg versions it was checked with, and any import problem turns the fast path
off rather than breaking ingest.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

SAFE_TYPES: dict[str, str] = {
    "double precision": "float8",
    "bigint": "int8",
    "text": "text",
    "character varying": "text",  # the same binary form as text
    "timestamp with time zone": "timestamptz",
}
"""Column types psycopg 3 encodes exactly as lab-db does, and the psycopg type used."""

_format_row: Callable[[Sequence[Any], Any, bytearray], None] | None = None
_make_transformer: Callable[[Sequence[str]], Any] | None = None

try:  # the optional extra: never required (imported by name: it has no stubs here)
    _psycopg = importlib.import_module("psycopg")
    _copy_base = importlib.import_module("psycopg._copy_base")
    _adapt = importlib.import_module("psycopg.adapt")
    _pg_types = importlib.import_module("psycopg.postgres").types
    _binary = importlib.import_module("psycopg.pq").Format.BINARY

    if _psycopg.pq.__impl__ in ("c", "binary"):  # the pure-Python psycopg is no faster

        def _transformer(names: Sequence[str]) -> Any:
            transformer = _adapt.Transformer()
            oids = [_pg_types[name].oid for name in names]
            transformer.set_dumper_types(oids, _binary)
            return transformer

        _format_row = _copy_base.format_row_binary
        _make_transformer = _transformer
except Exception as error:  # an incompatible psycopg: the plain path works everywhere
    log.debug("psycopg 3 row formatter not used: %r", error)

AVAILABLE = _format_row is not None
"""True when psycopg 3 with its C extension is installed (``lab-db[fast]``)."""


class RowFormatter:
    """Rows to binary COPY data with psycopg 3's C formatter, for ``SAFE_TYPES`` columns.

    Parameters
    ----------
    types : sequence of str
        ``format_type`` names of the columns; all must be in :data:`SAFE_TYPES`.

    Raises
    ------
    RuntimeError
        psycopg 3 with its C extension is not installed.
    ValueError
        A column type outside :data:`SAFE_TYPES`.
    """

    def __init__(self, types: Sequence[str]) -> None:
        if _format_row is None or _make_transformer is None:
            raise RuntimeError("psycopg 3 with its C extension is not installed (lab-db[fast])")
        unsafe = [name for name in types if name not in SAFE_TYPES]
        if unsafe:
            raise ValueError(f"not encoded by psycopg 3 here: {unsafe}")
        self.function: Callable[[Sequence[Any], Any, bytearray], None] = _format_row
        """psycopg's ``format_row_binary(row, transformer, out)``: one row onto ``out``."""
        self.transformer = _make_transformer([SAFE_TYPES[name] for name in types])
        """The psycopg transformer holding the columns' dumpers."""

    def format_into(self, rows: Sequence[Sequence[Any]], out: bytearray) -> None:
        """Append the rows' binary COPY data to ``out``; on an error ``out`` is left as it was.

        Raises
        ------
        Exception
            Whatever psycopg refuses a value with (the caller retries with its own encoder).
        """
        start = len(out)
        format_row, transformer = self.function, self.transformer
        try:
            for row in rows:
                format_row(row, transformer, out)
        except BaseException:
            del out[start:]
            raise


def formatter_for(types: Sequence[str]) -> RowFormatter | None:
    """Return a :class:`RowFormatter` for ``types``, or None when it cannot be used."""
    if not AVAILABLE or any(name not in SAFE_TYPES for name in types):
        return None
    return RowFormatter(types)
