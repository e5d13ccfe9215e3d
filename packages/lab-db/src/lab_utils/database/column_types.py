"""The column types lab-db knows: one registry read by DataType, the COPY encoder and the CLI.

Each :class:`ColumnType` says how a column is declared (``DataType``), how a Python value is
checked and converted for it (batch insert, the writer), how text is read into it (CSV
import, command line), and its fixed-size binary form when it has one (binary COPY).
Types are looked up by the name PostgreSQL's ``format_type`` reports (``double precision``).
"""

from __future__ import annotations

import datetime as dt
import numbers
import sys
from collections.abc import Callable

from lab_utils.database.timerange import moment

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
"""PostgreSQL's time origin."""
PG_EPOCH_UNIX = 946_684_800
"""PostgreSQL's time origin in Unix seconds."""


def to_pg_micros(value: Any) -> int:
    """Microseconds since 2000-01-01 UTC for a datetime (naive = local time) or a Unix time.

    Raises
    ------
    TypeError
        ``value`` is neither a datetime nor a number.
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        delta: dt.timedelta = value - PG_EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round((value - PG_EPOCH_UNIX) * 1_000_000)
    raise TypeError(f"{value!r} is not a time (datetime or Unix seconds)")


def _float_from_text(text: str) -> float:
    try:
        return float(text)  # also 'NaN' and 'inf'; float() ignores surrounding blanks
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _int_from_text(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


_TRUE = ("1", "t", "true", "y", "yes", "on")
_FALSE = ("0", "f", "false", "n", "no", "off")


def _bool_from_text(text: str) -> bool:
    # bool('false') is True: only these words are read as truth values, anything else refused.
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (use one of {', '.join(_TRUE + _FALSE)})")


def _is_decimal(value: Any) -> bool:
    # A Decimal exists only once its module is imported: this module need not import it.
    decimal = sys.modules.get("decimal")
    return decimal is not None and isinstance(value, decimal.Decimal)


def _to_float(value: Any) -> float:
    if isinstance(value, str):
        return _float_from_text(value)
    if isinstance(value, numbers.Real) or _is_decimal(value):
        return float(value)  # also Decimal and numpy floats
    raise TypeError(f"{value!r} is not a number")


def _to_int(value: Any) -> int:
    # A float with a fraction would be cut silently by int(): refuse it instead.
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        return _int_from_text(value)
    if _is_decimal(value) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    raise ValueError(f"{value!r} is not an integer")


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return _bool_from_text(value)
    if isinstance(value, (bool, numbers.Integral)) and value in (0, 1):
        return bool(value)
    if type(value).__name__ == "bool_":  # numpy.bool_, without importing numpy
        return bool(value)
    raise ValueError(f"{value!r} is not a boolean")


def _to_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{value!r} is bytes, not text")
    return str(value)


class ColumnType:
    """One column type and everything lab-db does with it (immutable).

    Attributes
    ----------
    name : str
        The name PostgreSQL's ``format_type`` gives (``'double precision'``).
    declared : str or None
        How :class:`~lab_utils.database.DataType` declares it (``'FLOAT(53)'``), if it does.
    data_type : str or None
        The ``DataType`` member naming it (``'double'``), if any.
    convert : callable
        Checks a Python value and returns what the encoder sends; raises
        ``ValueError``/``TypeError`` for a value the column cannot hold.
    from_text : callable
        Reads a text field (CSV, command line) into a Python value.
    struct_code : str or None
        :mod:`struct` code of the fixed-size binary form; None for variable size (text).
    size : int
        Bytes of the fixed-size binary form (0 for text).
    """

    # A plain class rather than a dataclass: dataclasses imports inspect (with ast, dis and
    # tokenize), 12 ms of every `import lab_utils.database` for ten registry entries.
    __slots__ = ("convert", "data_type", "declared", "from_text", "name", "size", "struct_code")
    _FIELDS = ("name", "declared", "data_type", "convert", "from_text", "struct_code", "size")

    name: str
    declared: str | None
    data_type: str | None
    convert: Callable[[Any], Any]
    from_text: Callable[[str], Any]
    struct_code: str | None
    size: int

    def __init__(
        self,
        name: str,
        declared: str | None,
        data_type: str | None,
        convert: Callable[[Any], Any],
        from_text: Callable[[str], Any],
        struct_code: str | None,
        size: int,
    ) -> None:
        values = (name, declared, data_type, convert, from_text, struct_code, size)
        for field, value in zip(self._FIELDS, values, strict=True):
            object.__setattr__(self, field, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, field) for field in self._FIELDS)

    def __setattr__(self, name: str, value: Any) -> None:
        """Refuse changes: the registry's entries are shared by every encoder."""
        raise AttributeError(f"cannot assign to field {name!r}: a ColumnType is immutable")

    def __delattr__(self, name: str) -> None:
        """Refuse changes, as :meth:`__setattr__` does."""
        raise AttributeError(f"cannot delete field {name!r}: a ColumnType is immutable")

    def __eq__(self, other: object) -> bool:
        """Equal when every field is."""
        if type(other) is not ColumnType:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        """Hash of the fields, consistent with :meth:`__eq__`."""
        return hash(self._values())

    def __repr__(self) -> str:
        """Show every field, as a dataclass would."""
        fields = ", ".join(f"{field}={getattr(self, field)!r}" for field in self._FIELDS)
        return f"ColumnType({fields})"

    @property
    def is_time(self) -> bool:
        """True for the timestamp types."""
        return self.name.startswith("timestamp")


_TYPES = [
    ColumnType("boolean", "BOOLEAN", "bool", _to_bool, _bool_from_text, "?", 1),
    ColumnType("smallint", "SMALLINT", "short", _to_int, _int_from_text, "h", 2),
    ColumnType("integer", "INTEGER", "int", _to_int, _int_from_text, "i", 4),
    ColumnType("bigint", "BIGINT", "long", _to_int, _int_from_text, "q", 8),
    ColumnType("real", "FLOAT(24)", "float", _to_float, _float_from_text, "f", 4),
    ColumnType("double precision", "FLOAT(53)", "double", _to_float, _float_from_text, "d", 8),
    ColumnType("text", "TEXT", "string", _to_text, str, None, 0),
    ColumnType("character varying", None, None, _to_text, str, None, 0),
    ColumnType("timestamp with time zone", "TIMESTAMPTZ", "time", to_pg_micros, moment, "q", 8),
    # A time typed without a zone is local time, as everywhere in lab-db.
    ColumnType("timestamp without time zone", None, None, to_pg_micros, moment, "q", 8),
]

REGISTRY: dict[str, ColumnType] = {t.name: t for t in _TYPES}
"""Every known column type by its ``format_type`` name."""

NULL_TEXTS = ("", "NULL")
"""Text fields read as SQL NULL by :func:`value_from_text`."""


def column_type(type_name: str) -> ColumnType:
    """Return the registry entry of ``type_name`` (a ``format_type`` name).

    ``character varying(20)`` and similar modifiers map to their base type.

    Raises
    ------
    ValueError
        lab-db cannot read or write columns of this type.
    """
    base = type_name.split("(", 1)[0].strip()
    if type_name in REGISTRY:
        return REGISTRY[type_name]
    if base in REGISTRY and REGISTRY[base].struct_code is None:
        return REGISTRY[base]
    known = ", ".join(REGISTRY)
    raise ValueError(f"columns of type {type_name!r} are not supported (supported: {known})")


def text_reader(type_name: str) -> Callable[[str], Any]:
    """Return the function reading a text field into a value of a ``type_name`` column.

    Look the type up once per column and call the function per field (CSV import).
    ``''`` and ``'NULL'`` give None; a field that is not a value of the type raises
    ``ValueError`` saying what is accepted (``'warm' is not a number``).

    Raises
    ------
    ValueError
        lab-db cannot read or write columns of this type.
    """
    from_text = column_type(type_name).from_text

    def read(text: str) -> Any:
        return None if text in NULL_TEXTS else from_text(text)

    return read


def value_from_text(type_name: str, text: str) -> Any:
    """Return the Python value of ``text`` for a column of ``type_name``.

    ``''`` and ``'NULL'`` give None. The command line reads its fields the same way
    (:func:`text_reader`).

    Parameters
    ----------
    type_name : str
        The column's ``format_type`` name (see :meth:`Database.column_types`).
    text : str
        The field as typed or read from a file.

    Raises
    ------
    ValueError
        ``text`` is not a value of this type, or the type is not supported.
    """
    read = text_reader(type_name)
    try:
        return read(text)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{text!r} is not a valid {type_name} value ({error})") from None
