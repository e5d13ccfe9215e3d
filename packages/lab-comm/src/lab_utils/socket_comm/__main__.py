"""Command line: ``python -m lab_utils.socket_comm send|shell|fleet`` (also ``lab-comm``).

This module is the entry point of both, and imports nothing of the command line itself at
module level: the command line's imports (argparse, logging, the client) take tens of
milliseconds, and Ctrl+C in that time must end the run as Ctrl+C later does (``interrupted``
on stderr, exit status 130), not with a traceback.
"""

from __future__ import annotations

import sys

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from lab_utils.socket_comm.shell import commands_from_help

__all__ = ["INTERRUPTED", "commands_from_help", "main"]

INTERRUPTED = 130
"""Exit status after Ctrl+C (128 + SIGINT, what shells report for an interrupted program)."""


def main(argv: list[str] | None = None) -> int:
    """Run :func:`lab_utils.socket_comm.cli.main` with ``argv``; 130 after Ctrl+C at any point.

    Its exit statuses otherwise (0, 1, 2) are those of the command line.
    """
    try:
        run = _load_quietly()
        return run(argv) if run is not None else _interrupted()
    except KeyboardInterrupt:
        return _interrupted()


def _load_quietly() -> Callable[[list[str] | None], int] | None:
    """Import the command line with Ctrl+C noted, not raised; None when it was pressed.

    A KeyboardInterrupt raised in the middle of an import can land in one of importlib's
    weakref callbacks, where Python prints "Exception ignored" with a traceback and goes on
    as if Ctrl+C had never come, and one raised in code that an import runs through
    ``exec`` of a string (dataclasses, namedtuple) makes Python die by SIGINT at exit even
    when caught. The imports are therefore left to finish first.
    """
    import signal

    pressed: list[int] = []
    # Only where Python's own handler is set: not over a SIG_IGN (`nohup`, `cmd &`) nor
    # over an application's handler, nor outside the main thread (where it cannot be set).
    defer = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if defer:
        try:
            signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
        except ValueError:  # not the main thread
            defer = False
    try:
        # Also what the first run imports on its way: the subcommands (build_parser()) and
        # shutil (argparse's help formatter, up to Python 3.10).
        import shutil  # noqa: F401

        from lab_utils.socket_comm import fleet, shell  # noqa: F401
        from lab_utils.socket_comm.cli import main as run
    finally:
        if defer:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    return None if pressed else run


def _interrupted() -> int:
    sys.stderr.write("interrupted\n")
    return INTERRUPTED


def __getattr__(name: str) -> Any:
    """Import ``commands_from_help`` (kept here for scripts that import it) when asked for."""
    if name == "commands_from_help":
        from lab_utils.socket_comm.shell import commands_from_help

        return commands_from_help
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
