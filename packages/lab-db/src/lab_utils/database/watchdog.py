"""Take an embedded PostgreSQL down when the process that started it is gone.

Run by :class:`~lab_utils.database.embedded.EmbeddedPostgres` as a script, not imported:
``python -I -S watchdog.py PID [FOLDER]``. Its standard input is a pipe whose only
writer is the starting process. ``stop()`` writes one byte and closes it: nothing to do.
End of file without that byte means the starter died (an exception, SIGTERM, even
SIGKILL: the kernel closes the pipe in every case), so the watchdog stops the server
with a fast shutdown and removes its temporary folder.

It runs in a session of its own, so the Ctrl-C meant for the starter does not reach it,
and it uses the standard library only (started with ``-S``, no site-packages).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time

RELEASED = b"x"
"""The byte :meth:`EmbeddedPostgres.stop` sends: the server is already taken care of."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone we may not signal
        return True
    # An orphan whose new parent does not reap it (PID 1 of some containers) stays a
    # zombie: it holds no port and no files any more, so it counts as gone.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True


def _shut_down(pid: int, grace: float = 30.0) -> None:
    # SIGINT is PostgreSQL's fast shutdown; SIGQUIT its immediate one if that hangs.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)


def main(argv: list[str]) -> int:
    """Wait for the starter to release or abandon server ``argv[0]``; return 0."""
    pid = int(argv[0])
    folder = argv[1] if len(argv) > 1 else None
    # Ignore the terminal's signals: only the pipe decides.
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    released = sys.stdin.buffer.read(1) == RELEASED
    if not released:
        _shut_down(pid)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
