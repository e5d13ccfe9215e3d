"""The daemon's ``[Overall]`` section: what it may hold, how each value is read and checked.

As in lab_utils 0.4, every option has a fallback, so a missing file or section still starts
the daemon on ``localhost:1507``; unlike 0.4 that is said in a WARNING naming the file.
Unknown options are reported with the closest known name, values that cannot be read are
errors naming the option, and paths are relative to the file's folder.
"""

from __future__ import annotations

import configparser
import difflib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SECTION = "Overall"
"""The section a daemon reads (the name 0.4 used; shared with the client's file)."""


class ConfigValueError(configparser.Error, ValueError):
    """An option of the daemon's file holds a value that cannot be used.

    A :class:`configparser.Error` (what config problems raise in the suite) and a
    :class:`ValueError` (what 0.4 raised for ``port = abc``), so both kinds of handlers
    catch it.
    """


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


_Reader = Callable[[str], Any]

OPTIONS: dict[str, tuple[_Reader | None, str]] = {
    "host": (str, "a host name or address"),
    "port": (_port, "a whole number from 0 to 65535"),
    "connection_timeout": (_positive_float, "a number of seconds above 0"),
    "max_connections": (_positive_int, "a whole number above 0"),
    "max_message_size": (_positive_int, "a number of bytes above 0"),
    "tls_cert": (None, "a path"),
    "tls_key": (None, "a path"),
    "tls_ca": (None, "a path"),
    "secret_file": (None, "a path"),
}
"""Options the daemon reads: how each value is converted (None: a path) and what is accepted."""

CLIENT_OPTIONS = ("timeout", "persistent", "tls")
"""Options a client may read from the same file; the daemon ignores them without a warning."""


def read_overall(
    filename: str | Path,
    logger: logging.Logger,
    defaults: dict[str, Any],
    extra_options: Iterable[str] = (),
) -> dict[str, Any]:
    """Read the daemon options of ``[Overall]`` in ``filename``.

    Parameters
    ----------
    filename : str or path
        The INI file (``~`` expanded).
    logger : logging.Logger
        Receives the warnings: missing file or section, unknown options.
    defaults : dict
        The values in use, named in the warning when the file or section is missing.
    extra_options : iterable of str
        Options the daemon subclass reads itself, accepted without a warning.

    Returns
    -------
    dict
        The options present, converted; paths absolute and ``~`` expanded. ``secret_file``
        becomes ``secret``: the bytes of the file, stripped.

    Raises
    ------
    ConfigValueError
        A value cannot be read, or ``secret_file`` names a file that cannot be read.
    configparser.Error
        The file is not a valid INI file.
    """
    path = Path(filename).expanduser()
    parser = configparser.ConfigParser()
    if not parser.read(path, encoding="utf-8"):
        logger.warning(
            "Config file %s not found; using the defaults (%s)", path, _describe(defaults)
        )
        return {}
    if not parser.has_section(SECTION):
        logger.warning(
            "No [%s] section in %s; using the defaults (%s)", SECTION, path, _describe(defaults)
        )
        return {}
    known = set(OPTIONS) | set(CLIENT_OPTIONS) | set(extra_options)
    values: dict[str, Any] = {}
    for option, text in parser.items(SECTION):
        if option not in known:
            close = difflib.get_close_matches(option, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            logger.warning("Unknown option %r in [%s] of %s%s", option, SECTION, path, hint)
            continue
        if option not in OPTIONS:
            continue
        reader, accepted = OPTIONS[option]
        if reader is None:
            target = Path(text).expanduser()
            values[option] = str(target if target.is_absolute() else path.parent / target)
            continue
        try:
            values[option] = reader(text.strip())
        except ValueError:
            raise ConfigValueError(
                f"[{SECTION}] {option} = {text!r} in {path} is not {accepted}"
            ) from None
    if "secret_file" in values:
        secret_path = values.pop("secret_file")
        try:
            values["secret"] = Path(secret_path).read_bytes().strip()
        except OSError as error:
            raise ConfigValueError(
                f"secret_file {secret_path} named in [{SECTION}] of {path} cannot be read:"
                f" {error.strerror or error}"
            ) from None
        if not values["secret"]:
            raise ConfigValueError(f"secret_file {secret_path} named in {path} is empty")
    return values


def _describe(defaults: dict[str, Any]) -> str:
    return ", ".join(f"{name} {value}" for name, value in defaults.items())
