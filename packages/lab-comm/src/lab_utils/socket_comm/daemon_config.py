"""The daemon's ``[Overall]`` section: what it may hold, and how the daemon reads it.

As in lab_utils 0.4, every option has a fallback, so a missing file or section still starts
the daemon on ``localhost:1507``; unlike 0.4 that is said in a WARNING naming the file.
Unknown options are reported with the closest known name, values that cannot be read are
errors naming the option, and paths are relative to the file's folder (the reading itself
is :mod:`~lab_utils.socket_comm.inifile`'s, shared with the client and the fleet file).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from lab_utils.socket_comm.inifile import (
    BYTES,
    COUNT,
    PORT,
    SECONDS,
    ConfigValueError,
    ValueKind,
    load_ini,
    read_secret_file,
    resolve_path,
    unknown_options,
)

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SECTION = "Overall"
"""The section a daemon reads (the name 0.4 used; shared with the client's file)."""

OPTIONS: dict[str, ValueKind | None] = {
    "host": ValueKind(str, "a host name or address"),
    "port": PORT,
    "connection_timeout": SECONDS,
    "max_connections": COUNT,
    "max_message_size": BYTES,
    "tls_cert": None,
    "tls_key": None,
    "tls_ca": None,
    "secret_file": None,
    "pid_file_name": None,
}
"""Options the daemon reads, and how each value is read (None: a path)."""

TLS_FILES = ("tls_cert", "tls_key", "tls_ca")
"""The PEM files a daemon's TLS reads."""

CLIENT_OPTIONS = ("host", "port", "secret_file")
"""Options a client reads from the same file (the daemon's own file will do for a client on
the same machine): :meth:`Client.config <lab_utils.socket_comm.Client.config>` reads
``host``, ``port`` and ``secret_file``, which the daemon reads too. Options nobody reads
(a client's ``timeout``, say) are reported like any unknown option, not taken in silence."""


def known_options(extra_options: Iterable[str] = ()) -> list[str]:
    """Return every option ``[Overall]`` may hold without a warning, the daemon's first.

    Parameters
    ----------
    extra_options : iterable of str
        Options the daemon subclass reads itself.
    """
    return list(dict.fromkeys([*OPTIONS, *CLIENT_OPTIONS, *extra_options]))


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
        The file exists but cannot be read (a folder, no permission), a value cannot be
        read, or ``secret_file`` or a TLS file names a file that cannot be read. An empty
        path names no file (as if the option were absent).
    configparser.Error
        The file is not a valid INI file.
    """
    path = Path(filename).expanduser()
    parser = load_ini(path)
    if parser is None:
        logger.warning(
            "Config file %s not found; using the defaults (%s)", path, _describe(defaults)
        )
        return {}
    if not parser.has_section(SECTION):
        logger.warning(
            "No [%s] section in %s; using the defaults (%s)", SECTION, path, _describe(defaults)
        )
        return {}
    for warning in unknown_options(
        parser.options(SECTION), known_options(extra_options), SECTION, path
    ):
        logger.warning("%s", warning[:1].upper() + warning[1:])  # a record opens with a capital
    values: dict[str, Any] = {}
    for option, text in parser.items(SECTION):
        if option not in OPTIONS:
            continue
        kind = OPTIONS[option]
        if kind is None:
            # An empty path names no file, as in the client's and the fleet's files (it
            # would otherwise resolve to the config file's own folder).
            if text.strip():
                values[option] = str(resolve_path(text, path))
        else:
            values[option] = kind.read(text, SECTION, option, path)
    if values.get("host") == "":
        # As in 0.4 an empty host binds every address; that reaches the network, so say it.
        logger.warning(
            "Empty host in [%s] of %s: listening on every address (write 0.0.0.0 or :: to"
            " mean it, or localhost for this machine only)",
            SECTION,
            path,
        )
    for option in TLS_FILES:
        if option in values:
            try:  # now, not when the daemon starts: then the file and option are named
                with open(values[option], "rb"):
                    pass
            except OSError as error:
                raise _unreadable(option, values[option], path, error) from None
    if "secret_file" in values:
        secret_path = values.pop("secret_file")
        source = f"secret_file of [{SECTION}] in {path}"
        try:
            values["secret"] = read_secret_file(secret_path, source)
        except OSError as error:
            raise _unreadable("secret_file", secret_path, path, error) from None
    return values


def _unreadable(option: str, file: str, path: Path, error: OSError) -> ConfigValueError:
    reason = os.strerror(error.errno) if error.errno else error.strerror
    return ConfigValueError(
        f"{option} {file} named in [{SECTION}] of {path} cannot be read: {reason}"
    )


def _describe(defaults: dict[str, Any]) -> str:
    return ", ".join(f"{name} {value}" for name, value in defaults.items())
