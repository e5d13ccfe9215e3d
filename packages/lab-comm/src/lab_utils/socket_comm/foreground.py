"""A daemon run as a program: the suite's exit status and one-line errors.

``Cryostat().start_daemon()`` at the bottom of a script ends, when the daemon cannot start,
in a traceback and exit status 1: systemd's ``Restart=on-failure`` then starts it again and
again, and the operator reads a traceback for a typo in a path. :func:`run_daemon` builds
and runs the daemon and turns what cannot be fixed by trying again (a config value, a PID
file, a TLS file, a busy address, a daemon already running) into one line on stderr and
exit status 2, the suite's "usage or configuration problem" (``RestartPreventExitStatus=2``
stops the loop).
"""

from __future__ import annotations

import configparser
import os
import sys
import traceback
from collections.abc import Callable

import zc.lockfile

from lab_utils.socket_comm.server import Server

CONFIG_ERROR = 2
"""Exit status of a daemon that cannot start: a configuration or usage problem."""
INTERRUPTED = 130
"""Exit status after Ctrl+C before the daemon listened (its handlers were not set yet)."""


def run_daemon(factory: Callable[..., Server], *args: object, **kwargs: object) -> int:
    """Build a daemon with ``factory(*args, **kwargs)``, serve until it stops, return the status.

    Use it as the program's exit status: ``sys.exit(run_daemon(Cryostat, port=1507))``.
    Errors other than the ones below keep their traceback (a bug is for developers).

    Parameters
    ----------
    factory : callable
        The daemon class (a :class:`~lab_utils.socket_comm.Server` subclass), or any
        callable returning a daemon.
    *args, **kwargs
        Passed to ``factory``.

    Returns
    -------
    int
        0 once the daemon has stopped (``quit``, SIGINT, SIGTERM); 2 when it could not be
        built or could not start: an unusable config value or file (``configparser.Error``,
        ``ValueError``), a file or address the system refused (``OSError``), or a daemon
        already holding the PID lock (``zc.lockfile.LockError``). The error is written to
        stderr as ``error: ...`` and a hint; its traceback only with ``LAB_UTILS_DEBUG=1``.
    """
    debug = os.environ.get("LAB_UTILS_DEBUG") == "1"
    try:
        daemon = factory(*args, **kwargs)
        daemon.start_daemon()
    except (configparser.Error, ValueError, OSError, zc.lockfile.LockError) as error:
        if debug:
            traceback.print_exception(type(error), error, error.__traceback__)
        sys.stderr.write(f"error: {describe(error)}\n")
        if not debug:
            sys.stderr.write("hint: set LAB_UTILS_DEBUG=1 to see the traceback\n")
        return CONFIG_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return INTERRUPTED
    return 0


def describe(error: BaseException) -> str:
    """Return what went wrong in one line, without the ``[Errno N]`` of an ``OSError``."""
    if isinstance(error, zc.lockfile.LockError):
        return f"{error}: another daemon holds this PID file; is it running already?"
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
        if error.filename is not None and str(error.filename) not in text:
            text = f"{text} ({error.filename})"
        return text
    return " ".join(str(error).split()) or type(error).__name__
