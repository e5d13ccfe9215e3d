"""Column types and constraints a table may be given (validated, never raw SQL)."""

from __future__ import annotations

import enum

from psycopg2 import sql


class DataType(enum.Enum):
    """SQL types for :meth:`Database.new_column`; ``str()`` gives the SQL type name."""

    bool = "BOOLEAN"
    """Boolean."""
    short = "SMALLINT"
    """16-bit integer."""
    int = "INTEGER"
    """32-bit integer."""
    long = "BIGINT"
    """64-bit integer."""
    float = "FLOAT(24)"
    """Single precision (``real``)."""
    double = "FLOAT(53)"
    """Double precision."""
    string = "TEXT"
    """Text."""
    time = "TIMESTAMPTZ"
    """Time stamp with time zone."""

    def __str__(self) -> str:
        """Return the SQL type name, as 0.4 did."""
        return self.value

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
