"""Turning the level values of a config file into logging levels, with clear errors."""

from __future__ import annotations

import configparser
import logging

from lab_utils.custom_logging.logger import SUCCESS

LEVEL_NAMES = ("DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
"""The level names a config file may use, in any case."""


class ConfigError(configparser.Error, ValueError):
    """A logging config option has a value that cannot be used.

    A :class:`configparser.Error` (what daemons already catch around ``configure_logging``)
    and a :class:`ValueError` (what an invalid level raised before).
    """


class OptionValueError(ConfigError):
    """An option holds a value that does not parse (``active = ture``, ``port = abc``).

    Unlike a sink that cannot start (a folder that cannot be created, a missing
    credentials file), a value that does not parse always fails the setup: read as a
    default it would silently switch a sink off or send records elsewhere.
    """


class LevelError(OptionValueError):
    """A log level option holds neither a level name nor a number."""


def parse_level(value: str | int, where: str = "log_level") -> int:
    """Return the logging level for ``value``: a name in any case or a number.

    Parameters
    ----------
    value : str or int
        ``'info'``, ``'SUCCESS'``, ``'20'``, ``20``...
    where : str, optional
        How to name the option in the error, e.g. ``'[FileLogger] log_level'``.

    Returns
    -------
    int
        The numeric level.

    Raises
    ------
    LevelError
        When ``value`` is neither a known level name nor a non-negative number.
    """
    if isinstance(value, int):
        level = value
    else:
        text = value.strip()
        if text.isdigit():
            level = int(text)
        elif text.upper() in LEVEL_NAMES:
            level = SUCCESS if text.upper() == "SUCCESS" else logging.getLevelName(text.upper())
        else:
            raise LevelError(
                f"{where} = {value!r} is not a log level: use one of "
                f"{', '.join(LEVEL_NAMES)} (any case) or a number"
            )
    if level < 0:
        raise LevelError(f"{where} = {value!r} is not a log level: numbers must be >= 0")
    return level
