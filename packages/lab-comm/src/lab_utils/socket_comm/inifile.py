"""Reading the INI files of lab-comm: clear errors naming the file, section and option.

Shared by the daemon's ``[Overall]`` (:mod:`~lab_utils.socket_comm.daemon_config`), the
``[Overall]`` a :class:`~lab_utils.socket_comm.Client` reads and the fleet file of the
command line. Values are read by one :class:`ValueKind` each, which names what it accepts
in the error; paths expand ``~`` and are relative to the file's folder.
"""

from __future__ import annotations

import configparser
import difflib
import errno
from collections.abc import Callable, Iterable
from pathlib import Path

from lab_utils.socket_comm import ports
from lab_utils.socket_comm.ports import checked_port

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class ConfigValueError(configparser.Error, ValueError):
    """A value in a config file cannot be used; the message names where and why.

    A :class:`configparser.Error` (what 0.4 documented for config problems) and a
    :class:`ValueError` (what 0.4 raised for ``port = abc``), so both kinds of handlers
    catch it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def load_ini(path: str | Path) -> configparser.ConfigParser | None:
    """Parse ``path``; None when there is no such file (the caller decides what that means).

    Parameters
    ----------
    path : str or Path
        The INI file (``~`` expanded).

    Returns
    -------
    configparser.ConfigParser or None
        The parsed file, or None when it does not exist.

    Raises
    ------
    ConfigValueError
        The file exists but cannot be read (a folder, no permission), or is not UTF-8
        text.
    configparser.Error
        The file is not valid INI; the message names it.
    """
    file = Path(path).expanduser()
    parser = configparser.ConfigParser()
    # Read here, not by ConfigParser.read: it skips a file it cannot open, and a folder
    # or a file without permission would pass for a missing one.
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as error:
        raise ConfigValueError(f"{file} is not UTF-8 text: {error}") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigValueError(f"cannot read the config file {file}: {reason}") from None
    parser.read_string(text, source=str(file))
    return parser


def read_ini(path: str | Path) -> configparser.ConfigParser:
    """Like :func:`load_ini`, but a missing file is an error naming it.

    Raises
    ------
    configparser.NoSectionError
        The file does not exist (0.4 raised this for ``[Overall]``; the message now names
        the file).
    configparser.Error
        The file is not valid INI (or not UTF-8 text).
    """
    parser = load_ini(path)
    if parser is None:
        missing = configparser.NoSectionError("Overall")
        missing.message = f"config file not found: {Path(path).expanduser()}"
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


class ValueKind:
    """How the text of an option becomes a value, and what is accepted (said in errors).

    A plain class, not a generic dataclass: ``dataclasses`` and ``typing`` cost more at
    import than the rest of the module (``dataclasses`` pulls in ``inspect``).

    Parameters
    ----------
    convert : callable
        Turns the stripped text into the value; raises ``ValueError`` when it cannot.
    accepted : str
        What the option accepts, completing ``... is not <accepted>``.
    """

    __slots__ = ("accepted", "convert")

    def __init__(self, convert: Callable[[str], Any], accepted: str) -> None:
        self.convert = convert
        """Turns the stripped text into the value; raises ``ValueError`` when it cannot."""
        self.accepted = accepted
        """What the option accepts, completing ``... is not <accepted>``."""

    def read(self, value: str, section: str, option: str, path: str | Path) -> Any:
        """Convert ``value``, the text of ``option`` in ``[section]`` of ``path``.

        Raises
        ------
        ConfigValueError
            ``value`` is not accepted; the message names section, option, value and file.
        """
        try:
            return self.convert(value.strip())
        except ValueError:
            raise ConfigValueError(
                f"[{section}] {option} = {value!r} in {Path(path).expanduser()} is not"
                f" {self.accepted}"
            ) from None


def _host(text: str) -> str:
    if not text:  # "" would reach no daemon, and bind a daemon to every address
        raise ValueError(text)
    return text


def _port(text: str) -> int:
    return checked_port(text, ports.BIND)


def _remote_port(text: str) -> int:
    return checked_port(text, ports.CONNECT)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


MAX_SECONDS_TEXT = "1e9"
"""The longest time limit as the errors say it."""
MAX_SECONDS = float(MAX_SECONDS_TEXT)
"""Longest time limit: sockets and sleeps refuse much longer ones (and ``inf``) with an
OverflowError when they are used, far from the option that said it."""


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= MAX_SECONDS:  # also refuses nan and inf
        raise ValueError(text)
    return value


def _yes_no(text: str) -> bool:
    try:
        return configparser.ConfigParser.BOOLEAN_STATES[text.lower()]
    except KeyError:
        raise ValueError(text) from None


HOST = ValueKind(_host, "a host name or address")
"""The address of a daemon to connect to (a client's; the fleet file's defaults to
``localhost``)."""
PORT = ValueKind(_port, ports.accepted(ports.BIND))
"""A TCP port to bind (0: one the system picks)."""
REMOTE_PORT = ValueKind(_remote_port, ports.accepted(ports.CONNECT))
"""The TCP port of a daemon to connect to (a client's or a fleet file's)."""
COUNT = ValueKind(_positive_int, "a whole number above 0")
"""How many of something."""
BYTES = ValueKind(_positive_int, "a number of bytes above 0")
"""A size limit."""
SECONDS = ValueKind(_seconds, f"a number of seconds above 0 and at most {MAX_SECONDS_TEXT}")
"""A time limit (0 would turn waiting into not waiting at all)."""
YES_NO = ValueKind(_yes_no, f"one of {', '.join(configparser.ConfigParser.BOOLEAN_STATES)}")
"""A switch, in the words :class:`configparser.ConfigParser` accepts."""


def one_of(choices: Iterable[str]) -> ValueKind:
    """Return the kind of an option that holds one word of ``choices``."""
    words = tuple(choices)

    def choose(text: str) -> str:
        if text not in words:
            raise ValueError(text)
        return text

    return ValueKind(choose, f"one of {', '.join(words)}")


def resolve_path(value: str, config_file: str | Path | None) -> Path:
    """Expand ``~``; a relative path is relative to the folder of ``config_file``."""
    path = Path(value.strip()).expanduser()
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
        ``unknown option 'prot' in [cryo] of fleet.ini; did you mean 'port'?`` lines
        (``(known: ...)`` in place of the suggestion when no known name is close).
    """
    known = list(dict.fromkeys(known))
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
        The file cannot be read; ``strerror`` says which file was meant, ``filename`` is it
        and ``errno`` why.
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
