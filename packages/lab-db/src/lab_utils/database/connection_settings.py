"""Where the command line connects: ``--config FILE``, else ``DATABASE_URL``, else ``PG*``.

Each source gives the keyword arguments of :class:`~lab_utils.database.Database`; every
problem is a :class:`~lab_utils.database.cli_errors.CommandError` naming the file, the
section and the option. A config file is read by the library's own reader
(:func:`~lab_utils.database.config.read_database_config`), called directly so that a
mistake is reported once, as the command's error line.
"""

from __future__ import annotations

import configparser
import getpass
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg2.extensions

from lab_utils.database.cli_errors import CommandError
from lab_utils.database.config import (
    OPTIONS,
    SECTION,
    ConfigFileNotFoundError,
    ConfigValueError,
    port_number,
    read_database_config,
)

# libpq URI keywords that map onto Database arguments; others are refused, not dropped.
_URL_KEYWORDS = {"host": "host", "port": "port", "dbname": "database", "user": "user",
                 "passfile": "passfile"}  # fmt: skip


def _port(text: str, where: str) -> int:
    try:
        return port_number(text)
    except ValueError as error:
        raise CommandError(f"port {error}", where) from None


def from_config_file(name: str) -> dict[str, Any]:
    """Return the ``[Overall]`` settings of INI file ``name``.

    Unknown sections and options are logged as warnings with the closest known name; a
    relative ``passfile`` is relative to the file's folder.
    """
    path = Path(name).expanduser()
    try:
        return read_database_config(path)
    except ConfigFileNotFoundError as error:
        if path.exists():  # there, but not readable: the reader says why
            raise CommandError(str(error)) from None
        raise CommandError(
            f"config file {name} not found",
            str(path.absolute()),
            f"give an [{SECTION}] database file, or set DATABASE_URL instead of --config",
        ) from None
    except ConfigValueError as error:
        raise CommandError(
            f"{error.option} {error.reason}", f"{error.option} in [{SECTION}] of {error.path}"
        ) from None
    except configparser.NoSectionError:
        raise CommandError(f"no [{SECTION}] section", str(path.absolute())) from None
    except configparser.NoOptionError as error:
        raise CommandError(
            f"option {error.option!r} missing in [{SECTION}]",
            str(path.absolute()),
            f"an [{SECTION}] database file sets {', '.join(OPTIONS)}",
        ) from None
    except configparser.Error as error:
        reason = " ".join(str(error).split())
        raise CommandError(f"cannot read config file: {reason}", str(path.absolute())) from None


def from_url(url: str) -> tuple[dict[str, Any], str | None]:
    """Return the settings and the password (or None) of libpq URI ``url``."""
    try:
        parts = psycopg2.extensions.parse_dsn(url)
    except psycopg2.ProgrammingError as error:
        raise CommandError(f"DATABASE_URL is not a libpq URI: {' '.join(str(error).split())}",
                           hint="e.g. postgresql://user@host:5432/database") from None  # fmt: skip
    password = parts.pop("password", None)
    unknown = sorted(set(parts) - set(_URL_KEYWORDS))
    if unknown:
        raise CommandError(
            f"DATABASE_URL sets {', '.join(unknown)}, which lab-db does not pass on",
            hint=f"use only {', '.join(_URL_KEYWORDS)} (and a password) in it",
        )
    found: dict[str, Any] = {_URL_KEYWORDS[key]: value for key, value in parts.items()}
    if "port" in found:
        found["port"] = _port(found["port"], "DATABASE_URL")
    return found, password


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Return settings from libpq's ``PG*`` variables, with libpq's defaults."""
    user = environ.get("PGUSER") or getpass.getuser()
    found: dict[str, Any] = {
        "host": environ.get("PGHOST") or "localhost",
        "port": _port(environ.get("PGPORT") or "5432", "PGPORT"),
        "database": environ.get("PGDATABASE") or user,
        "user": user,
    }
    if environ.get("PGPASSFILE"):
        found["passfile"] = environ["PGPASSFILE"]
    return found


def settings(config: str | None, environ: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    """Return the Database arguments and a password from the first source that is given."""
    if config is not None:
        return from_config_file(config), None
    found = from_environment(environ)
    if environ.get("DATABASE_URL"):
        given, password = from_url(environ["DATABASE_URL"])
        if "database" not in given:  # libpq's default: the user's name
            given["database"] = given.get("user", found["user"])
        return {**found, **given}, password
    return found, None
