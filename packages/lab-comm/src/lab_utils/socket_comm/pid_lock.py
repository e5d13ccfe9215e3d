"""The PID lock of a daemon: where its file lives by default, taking it, giving it back.

lab_utils 0.4 used ``/tmp/socket_comm.pid`` for every daemon, so two daemons on one machine
collided. Without an explicit ``pid_file_name`` each daemon now gets its own file, named
after its class and port, in the runtime folder: systemd's ``RuntimeDirectory=``
(``$RUNTIME_DIRECTORY``), else the user's ``$XDG_RUNTIME_DIR``, else the temporary folder.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import zc.lockfile

FOLDER_NAME = "lab-comm"
"""Sub-folder of the runtime folder that holds the default PID files."""

_unbound = itertools.count(1)  # daemons on a system-chosen port, numbered in this process


def runtime_folder() -> Path:
    """Return the folder for default PID files (created when missing, private to the user).

    Raises
    ------
    PermissionError
        The folder in the shared temporary folder belongs to another user.
    """
    for variable in ("RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"):
        value = os.environ.get(variable, "").split(":")[0]
        if value and Path(value).is_dir():
            # systemd's own folder is the service's already; the user's runtime folder is shared.
            base = Path(value)
            return base if variable == "RUNTIME_DIRECTORY" else _made(base / FOLDER_NAME)
    import tempfile  # here: 5 ms at import (shutil, random), for daemons without a PID file

    folder = _made(Path(tempfile.gettempdir()) / f"{FOLDER_NAME}-{_user()}")
    getuid = getattr(os, "getuid", None)
    if getuid is not None and folder.stat().st_uid != getuid():
        # A shared temporary folder: someone else may have made it first.
        raise PermissionError(
            f"{folder} belongs to another user; give the daemon a pid_file_name or set"
            " XDG_RUNTIME_DIR"
        )
    return folder


def default_pid_file(daemon_name: str, port: int) -> str:
    """Return the default PID file of a daemon class listening on ``port``.

    Parameters
    ----------
    daemon_name : str
        The daemon's class name.
    port : int
        Its TCP port; 0 (a port chosen by the system) gives the process id and a number
        instead: such daemons cannot collide on a port, so none excludes another.
    """
    stem = re.sub(r"[^a-z0-9]+", "-", daemon_name.lower()).strip("-") or "daemon"
    suffix = str(port) if port else f"pid{os.getpid()}-{next(_unbound)}"
    return str(runtime_folder() / f"{stem}-{suffix}.pid")


def take(path: str, source: str = "pid_file_name") -> zc.lockfile.LockFile:
    """Lock ``path`` (``zc.lockfile``, content ``<pid>;<hostname>``) as 0.4 did.

    Parameters
    ----------
    path : str
        The PID file.
    source : str
        Who named it, for the error (``'pid_file_name'``, ``'pid_file_name of [Overall]
        in daemon.ini'``).

    Raises
    ------
    zc.lockfile.LockError
        Another process (or another daemon in this one) holds the lock.
    OSError
        The file cannot be created (its folder does not exist, no permission); of the
        same kind as the system's error, with a message naming ``source``, the path and
        what to do, and ``filename`` the path.
    """
    try:
        return zc.lockfile.LockFile(path, content_template="{pid};{hostname}")
    except OSError as error:  # not LockError: that one is no OSError
        raise unusable(path, source, error) from None


def unusable(path: str, source: str, error: OSError) -> OSError:
    """Return ``error`` of a PID file that cannot be created, said so an operator can act.

    ``zc.lockfile`` says only "[Errno 2] No such file or directory: '/run/cryo/x.pid'":
    neither which option named it nor that the folder is what is missing.
    """
    folder = Path(path).expanduser().parent
    if not folder.is_dir():
        shape = "is not a folder" if folder.exists() else "does not exist"
        problem = f"the folder {folder} {shape}"
        todo = "create it, or name a PID file in an existing folder"
    elif isinstance(error, PermissionError):
        problem = f"no permission to write in {folder}"
        todo = "name a PID file in a folder the daemon's user may write to"
    else:
        problem = os.strerror(error.errno) if error.errno else str(error)
        todo = "name a PID file in another folder"
    what = f"{source}: cannot create the PID file, {problem} ({todo})"
    return type(error)(error.errno, what, path)


def release(lock: zc.lockfile.LockFile, path: str, remove: bool) -> None:
    """Give the lock back; with ``remove``, delete its file first (while still holding it).

    Deleting before unlocking means no other daemon can have taken the lock on this file in
    between: a daemon starting now creates and locks a new file.
    """
    try:
        if remove:
            Path(path).unlink(missing_ok=True)
    finally:
        lock.close()


def _made(folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _user() -> str:
    getuid = getattr(os, "getuid", None)
    return str(getuid()) if getuid is not None else os.environ.get("USERNAME", "user")
