"""Text from a command line or a CSV file turned into values of a column's type.

The one place the command line knows column types; values that do not parse raise
``ValueError`` saying what is accepted, never become a default silently.
"""

from __future__ import annotations

from collections.abc import Callable

from lab_utils.database.timerange import moment

NULLS = ("", "NULL")
"""Texts read as SQL NULL."""

_TRUE = ("1", "t", "true", "y", "yes", "on")
_FALSE = ("0", "f", "false", "n", "no", "off")


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (use one of {', '.join(_TRUE + _FALSE)})")


def _number(kind: Callable[[str], object], name: str) -> Callable[[str], object]:
    def parse(text: str) -> object:
        try:
            return kind(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not {name}") from None

    return parse


def converter(type_name: str) -> Callable[[str], object]:
    """Return the function turning text into a value of PostgreSQL type ``type_name``."""
    if type_name.startswith("timestamp"):
        return moment  # a time without zone is local time, as everywhere in lab-db
    if type_name == "boolean":
        return _boolean
    if type_name in ("integer", "bigint", "smallint"):
        return _number(int, "an integer")
    if type_name in ("double precision", "real") or type_name.startswith("numeric"):
        return _number(float, "a number")
    return str


def parse(convert: Callable[[str], object], text: str) -> object:
    """Return ``convert(text)``, or None for an empty field or ``NULL``."""
    return None if text in NULLS else convert(text)
