"""Column types and constraints a table may be given (validated, never raw SQL)."""

from __future__ import annotations

import enum

from psycopg2 import sql

from lab_utils.database.column_types import REGISTRY, ColumnType


def _declared(member: str) -> str:
    """Return the SQL a DataType member declares, from the column-type registry."""
    return next(t.declared for t in REGISTRY.values() if t.data_type == member and t.declared)


class DataType(enum.Enum):
    """SQL types for :meth:`Database.new_column`; ``str()`` gives the SQL type name."""

    bool = _declared("bool")
    """Boolean."""
    short = _declared("short")
    """16-bit integer."""
    int = _declared("int")
    """32-bit integer."""
    long = _declared("long")
    """64-bit integer."""
    float = _declared("float")
    """Single precision (``real``)."""
    double = _declared("double")
    """Double precision."""
    string = _declared("string")
    """Text."""
    time = _declared("time")
    """Time stamp with time zone."""

    def __str__(self) -> str:
        """Return the SQL type name, as 0.4 did."""
        return self.value

    @property
    def column_type(self) -> ColumnType:
        """The registry entry of this type (conversions, binary form)."""
        return next(t for t in REGISTRY.values() if t.data_type == self.name)

    @classmethod
    def parse(cls, value: object) -> DataType:
        """Return the DataType for ``value``: a member, its name or its SQL text.

        Raises
        ------
        ValueError
            ``value`` names no DataType (arbitrary SQL is refused).
        """
        if isinstance(value, cls):
            return value
        text = str(value).strip()
        for member in cls:
            if text.lower() == member.name or text.upper() == member.value:
                return member
        names = ", ".join(f"DataType.{m.name}" for m in cls)
        raise ValueError(f"{value!r} is not a column type; use one of {names}")


class Constraint(enum.Enum):
    """Column constraints for :meth:`Database.new_column`."""

    positive = "CHECK({column_name} >= 0)"
    """The value is zero or more (``NaN`` passes, as in PostgreSQL)."""
    positive_strict = "CHECK({column_name} > 0)"
    """The value is more than zero."""

    def __str__(self) -> str:
        """Return the 0.4 template text."""
        return self.value

    def sql(self, column: str) -> sql.Composed:
        """Return the constraint for ``column`` as composed SQL (the name quoted)."""
        operator = ">=" if self is Constraint.positive else ">"
        return sql.SQL("CHECK ({} " + operator + " 0)").format(sql.Identifier(column))

    @classmethod
    def parse(cls, value: object) -> Constraint:
        """Return the Constraint for ``value`` (a member or its name).

        Raises
        ------
        ValueError
            ``value`` names no Constraint.
        """
        if isinstance(value, cls):
            return value
        for member in cls:
            if str(value).strip().lower() in (member.name, member.value.lower()):
                return member
        raise ValueError(
            f"{value!r} is not a constraint; use Constraint.positive or Constraint.positive_strict"
        )
