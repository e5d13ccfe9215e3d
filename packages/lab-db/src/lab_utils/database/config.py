"""The database INI file: ``[Overall]`` host, port, database, user and passfile.

Read as lab_utils 0.4 read it, with the suite's manners for mistakes: a named file that is
missing, a missing option and a value that cannot be read raise ``configparser.Error``
subclasses whose messages name the file; a typo in a section or option name is a warning
suggesting the closest known name, so old files keep working.
"""

from __future__ import annotations

import configparser
import difflib
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SECTION = "Overall"
"""The one section the database file needs."""
OPTIONS = ("host", "port", "database", "user", "passfile")
"""Its options, all required (as in 0.4)."""


class ConfigFileNotFoundError(configparser.Error, FileNotFoundError):
    """A config file was named but does not exist (or cannot be read)."""


class ConfigValueError(configparser.Error, ValueError):
    """An option holds a value that cannot be read (``port = abc``).

    Attributes
    ----------
    option : str
        The option, e.g. ``'port'``.
    reason : str
        What is wrong with its value, e.g. ``"'abc' is not a port number (1-65535)"``.
    path : Path
        The file.
    """

    def __init__(self, message: str, option: str, reason: str, path: Path) -> None:
        super().__init__(message)
        self.option = option
        self.reason = reason
        self.path = path


def port_number(text: str) -> int:
    """Return ``text`` as a TCP port number; the one check of every port setting.

    Raises
    ------
    ValueError
        ``text`` is not a whole number from 1 to 65535 (the message says so).
    """
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ValueError(f"{text!r} is not a port number (1-65535)")
    return port


def _port(path: Path, text: str) -> int:
    try:
        return port_number(text)
    except ValueError as error:
        raise ConfigValueError(
            f"bad value {text!r} for option 'port' in [{SECTION}] of {path}:"
            " expected a port number from 1 to 65535",
            "port",
            str(error),
            path,
        ) from None


def _warn_unknown(path: Path, parser: configparser.ConfigParser) -> None:
    for section in parser.sections():
        if section != SECTION:
            near = difflib.get_close_matches(section, [SECTION], n=1)
            hint = f"; did you mean [{near[0]}]?" if near else ""
            log.warning("unknown section [%s] in %s%s", section, path, hint)
            continue
        for option in parser.options(section):
            if option not in OPTIONS:
                near = difflib.get_close_matches(option, OPTIONS, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                log.warning("unknown option %r in [%s] of %s%s", option, section, path, hint)


def read_database_config(config_file: str | Path) -> dict[str, Any]:
    """Return the ``[Overall]`` settings of a database INI file.

    Parameters
    ----------
    config_file : str or Path
        The file; ``~`` is expanded. A relative ``passfile`` in it is relative to the
        file's folder.

    Returns
    -------
    dict
        ``host``, ``port`` (int), ``database``, ``user`` and ``passfile``.

    Raises
    ------
    ConfigFileNotFoundError
        The file does not exist or cannot be read (a ``configparser.Error``).
    configparser.NoSectionError, configparser.NoOptionError
        ``[Overall]`` or one of its options is missing (the message names the file).
    ConfigValueError
        A value cannot be read, e.g. ``port = abc`` (a ``configparser.Error``).
    configparser.Error
        The file is not valid INI.
    """
    path = Path(config_file).expanduser().absolute()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle, str(path))
    except OSError as error:
        raise ConfigFileNotFoundError(
            f"database config file {path} cannot be read: {error.strerror or error}"
        ) from None
    except UnicodeDecodeError as error:
        raise configparser.Error(
            f"database config file {path} is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    _warn_unknown(path, parser)
    if not parser.has_section(SECTION):
        missing = configparser.NoSectionError(SECTION)
        missing.message += f" in {path}"
        raise missing
    settings: dict[str, Any] = {}
    for option in OPTIONS:
        if not parser.has_option(SECTION, option):
            absent = configparser.NoOptionError(option, SECTION)
            absent.message += f" of {path}"
            raise absent
        settings[option] = parser.get(SECTION, option).strip()
    settings["port"] = _port(path, settings["port"])
    passfile = Path(settings["passfile"]).expanduser()
    if not passfile.is_absolute():
        passfile = path.parent / passfile
    settings["passfile"] = str(passfile)
    return settings
