"""Where the command line connects: ``--config FILE``, else ``DATABASE_URL``, else ``PG*``.

Each source gives the keyword arguments of :class:`~lab_utils.database.Database`; every
problem is a :class:`~lab_utils.database.cli_errors.CommandError` naming the file, the
section and the option.
"""

from __future__ import annotations

import configparser
import difflib
import getpass
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg2.extensions

from lab_utils.database.cli_errors import CommandError

log = logging.getLogger(__name__)

OPTIONS = ("host", "port", "database", "user", "passfile")
"""The options of the ``[Overall]`` section."""

# libpq URI keywords that map onto Database arguments; others are refused, not dropped.
_URL_KEYWORDS = {"host": "host", "port": "port", "dbname": "database", "user": "user",
                 "passfile": "passfile"}  # fmt: skip


def _port(text: str, where: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise CommandError(f"port {text!r} is not a port number (1-65535)", where)
    return port


def from_config_file(name: str) -> dict[str, Any]:
    """Return the ``[Overall]`` settings of INI file ``name``.

    Unknown options are logged as warnings with the closest known name; a relative
    ``passfile`` is relative to the file's folder.
    """
    path = Path(name).expanduser()
    if not path.is_file():
        raise CommandError(
            f"config file {name} not found",
            str(path.absolute()),
            "give an [Overall] database file, or set DATABASE_URL instead of --config",
        )
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as error:
        raise CommandError(f"cannot read config file: {' '.join(str(error).split())}",
                           str(path)) from None  # fmt: skip
    if not parser.has_section("Overall"):
        raise CommandError("no [Overall] section", str(path))
    for section in parser.sections():
        if section != "Overall":
            log.warning("unknown section [%s] in %s (only [Overall] is read)", section, path)
    for option in parser.options("Overall"):
        if option not in OPTIONS:
            close = difflib.get_close_matches(option, OPTIONS, n=1)
            guess = f"; did you mean {close[0]!r}?" if close else ""
            log.warning("unknown option %r in [Overall] of %s%s", option, path, guess)
    missing = [option for option in OPTIONS if not parser.has_option("Overall", option)]
    if missing:
        raise CommandError(
            f"option {missing[0]!r} missing in [Overall]",
            str(path),
            f"an [Overall] database file sets {', '.join(OPTIONS)}",
        )
    found: dict[str, Any] = {option: parser.get("Overall", option) for option in OPTIONS}
    found["port"] = _port(found["port"], f"port in [Overall] of {path}")
    passfile = Path(found["passfile"]).expanduser()
    found["passfile"] = str(passfile if passfile.is_absolute() else path.parent / passfile)
    return found


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
