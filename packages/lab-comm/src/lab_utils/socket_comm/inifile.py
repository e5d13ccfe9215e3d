"""Reading the INI files of clients: clear errors naming the file, section and option.

Shared by :class:`~lab_utils.socket_comm.Client` (the ``[Overall]`` section of a daemon's
file) and the fleet file of the command line. Paths in a file expand ``~`` and are
relative to the file's folder.
"""

from __future__ import annotations

import configparser
import difflib
import errno
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class ConfigValueError(configparser.Error, ValueError):
    """A value in a config file cannot be used; the message names where and why.

    A :class:`configparser.Error` (what 0.4 documented for config problems) and a
    :class:`ValueError` (what 0.4 raised for a port that is not a number).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_ini(path: str | Path) -> configparser.ConfigParser:
    """Read ``path``; a missing or unreadable file is an error naming it.

    Parameters
    ----------
    path : str or Path
        The INI file (``~`` expanded).

    Returns
    -------
    configparser.ConfigParser
        The parsed file.

    Raises
    ------
    configparser.NoSectionError
        The file does not exist (0.4 raised this for ``[Overall]``; the message now names
        the file).
    configparser.Error
        The file is not valid INI.
    """
    file = Path(path).expanduser()
    parser = configparser.ConfigParser()
    try:
        found = parser.read(file, encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigValueError(f"{file} is not UTF-8 text: {error}") from None
    if not found:
        missing = configparser.NoSectionError("Overall")
        missing.message = f"config file not found: {file}"
        missing.args = (missing.message,)
        raise missing
    return parser


def require_section(parser: configparser.ConfigParser, section: str, path: str | Path) -> None:
    """Raise :class:`configparser.NoSectionError` naming ``path`` when ``section`` is absent."""
    if not parser.has_section(section):
        error = configparser.NoSectionError(section)
        error.message = f"No section: {section!r} in {Path(path).expanduser()}"
        error.args = (error.message,)
        raise error


def get_text(parser: configparser.ConfigParser, section: str, option: str, path: str | Path) -> str:
    """Return a required option; its absence names section, option and file.

    Raises
    ------
    configparser.NoOptionError
        The option is missing (as in 0.4; the message names the file too).
    """
    try:
        return parser.get(section, option)
    except configparser.NoOptionError as error:
        where = Path(path).expanduser()
        error.message = f"No option {option!r} in section: {section!r} of {where}"
        error.args = (error.message,)
        raise


def to_int(value: str, section: str, option: str, path: str | Path) -> int:
    """Parse a whole-number option.

    Raises
    ------
    ConfigValueError
        ``value`` is not a whole number; the message names section, option and value.
    """
    return _parse(int, "a whole number", value, section, option, path)


def to_float(value: str, section: str, option: str, path: str | Path) -> float:
    """Parse a number option (``ConfigValueError`` naming it when it is not one)."""
    return _parse(float, "a number", value, section, option, path)


def _parse(
    kind: Callable[[str], T], what: str, value: str, section: str, option: str, path: str | Path
) -> T:
    try:
        return kind(value)
    except ValueError:
        raise ConfigValueError(
            f"[{section}] {option} = {value!r} in {Path(path).expanduser()} is not {what}"
        ) from None


def to_bool(value: str, section: str, option: str, path: str | Path) -> bool:
    """Parse a yes/no option (the words :class:`configparser.ConfigParser` accepts)."""
    words = configparser.ConfigParser.BOOLEAN_STATES
    try:
        return words[value.strip().lower()]
    except KeyError:
        raise ConfigValueError(
            f"[{section}] {option} = {value!r} in {Path(path).expanduser()} is not one of"
            f" {', '.join(words)}"
        ) from None


def resolve_path(value: str, config_file: str | Path | None) -> Path:
    """Expand ``~``; a relative path is relative to the folder of ``config_file``."""
    path = Path(value).expanduser()
    if config_file is not None and not path.is_absolute():
        path = Path(config_file).expanduser().parent / path
    return path


def unknown_options(
    names: Iterable[str], known: Iterable[str], section: str, path: str | Path
) -> list[str]:
    """Return one warning per name of ``names`` that is not ``known``, with a suggestion.

    Returns
    -------
    list of str
        ``unknown option 'prot' in [cryo] of fleet.ini; did you mean 'port'?`` lines.
    """
    known = list(known)
    warnings = []
    for name in names:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
        warnings.append(f"unknown option {name!r} in [{section}] of {path}{hint}")
    return warnings


def read_secret_file(path: str | Path, source: str) -> bytes:
    """Return the shared secret held in ``path`` (surrounding whitespace removed).

    Parameters
    ----------
    path : str or Path
        The secret file.
    source : str
        Who named the file, for the error (``'--secret-file'``, ``'secret_file of [Overall]
        in client.ini'``).

    Returns
    -------
    bytes
        The secret.

    Raises
    ------
    OSError
        The file cannot be read; ``strerror`` says which file was meant, ``filename`` is it.
    ConfigValueError
        The file is empty.
    """
    file = Path(path).expanduser()
    try:
        secret = file.read_bytes().strip()
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, f"{source}: secret file not found", str(file)
        ) from None
    except OSError as error:
        reason = f"{source}: cannot read the secret file: {error.strerror}"
        raise type(error)(error.errno, reason, str(file)) from None
    if not secret:
        raise ConfigValueError(f"the secret file {file} (named by {source}) is empty")
    return secret
