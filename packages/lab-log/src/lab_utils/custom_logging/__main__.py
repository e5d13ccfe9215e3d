"""The alarm console: ``lab-log listen``, or ``python -m lab_utils.custom_logging listen``.

Exit status: 0 after a clean stop (SIGTERM, SIGINT); 2 for a usage or configuration
problem or an address that cannot be listened on, reported as one ``error:`` line on
stderr (a traceback only with ``--debug`` or ``LAB_UTILS_DEBUG=1``).
"""

from __future__ import annotations

import argparse
import configparser
import logging
import os
import signal
import sys
import threading
from types import FrameType

from lab_utils.custom_logging.__about__ import __version__
from lab_utils.custom_logging.alarm import DEFAULT_ALARM_PORT, AlarmListener
from lab_utils.custom_logging.config import build_handlers
from lab_utils.custom_logging.console import console_handler
from lab_utils.custom_logging.delivery import QueuedDelivery, close_sinks
from lab_utils.custom_logging.formatters import JsonLineFormatter
from lab_utils.custom_logging.levels import LEVEL_NAMES, LevelError, parse_level
from lab_utils.custom_logging.options import read_config

USAGE_ERROR = 2
"""Exit status of a usage, configuration or address problem (the suite's convention)."""


class _FailureError(Exception):
    """A problem worth one ``error:`` line: the text, and a hint for the next step."""

    def __init__(self, text: str, hint: str = "") -> None:
        super().__init__(text)
        self.hint = hint


def _level(text: str) -> int:
    try:
        return parse_level(text, "--min-level")
    except LevelError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    # Global options are accepted before and after the subcommand, as everywhere in the suite.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--version", action="version", version=f"lab-log {__version__}",
        help="print the distribution name and version, then exit",
    )  # fmt: skip
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS,
        help="show tracebacks (also LAB_UTILS_DEBUG=1)",
    )  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="lab-log", parents=[common], description="lab-log: the alarm console of lab-utils"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listen = commands.add_parser(
        "listen", parents=[common], help="print incoming alarm records",
        description="Receive alarm records (the [AlarmLogger] sink of the daemons) and print "
        "them: coloured on a terminal, plain in a pipe, one JSON object each with --json.",
    )  # fmt: skip
    listen.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    listen.add_argument(
        "--port", type=int, default=DEFAULT_ALARM_PORT,
        help=f"TCP port ({DEFAULT_ALARM_PORT}; 0: any free port)",
    )  # fmt: skip
    listen.add_argument(
        "--json", action="store_true",
        help="print one JSON object per alarm (asctime, levelname, name, module, funcName, "
        "message), for other programs",
    )  # fmt: skip
    listen.add_argument(
        "--min-level", type=_level, default=logging.NOTSET, metavar="LEVEL",
        help=f"print only alarms at this level or above ({', '.join(LEVEL_NAMES)} or a number)",
    )  # fmt: skip
    listen.add_argument(
        "--config", metavar="FILE",
        help="logging INI file whose file, mail and Slack sinks also get every alarm",
    )  # fmt: skip
    return parser


def _handlers(args: argparse.Namespace) -> list[logging.Handler]:
    if args.json:
        printer: logging.Handler = logging.StreamHandler(sys.stdout)
        printer.setLevel(args.min_level)
        printer.setFormatter(JsonLineFormatter())
    else:
        printer = console_handler(level=args.min_level)
    handlers = [printer]
    if args.config:
        try:
            extra, warnings = build_handlers(
                read_config(args.config), only=("file", "mail", "Slack")
            )
        except configparser.Error as error:
            raise _FailureError(f"{error}", "fix the file given with --config") from error
        handlers += extra
        for text in warnings:
            sys.stderr.write(f"warning: {text}\n")
    return handlers


def _listen(args: argparse.Namespace) -> int:
    handlers = _handlers(args)
    try:
        server = AlarmListener(args.host, args.port, handlers)
    except OSError as error:
        for handler in handlers:
            handler.close()
        reason = error.strerror or str(error)
        raise _FailureError(
            f"cannot listen on {args.host}:{args.port}: {reason}",
            "another listener may be running there; choose another --port",
        ) from error

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever; it must not run in the thread it waits for.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The banner goes where it cannot spoil JSON output read by another program.
    banner = sys.stderr if args.json else sys.stdout
    banner.write(f"listening for alarm records on {args.host}:{server.port}\n")
    banner.flush()
    with server:
        server.serve_forever(poll_interval=0.2)
    # Network sinks side by side: hanging servers cost one timeout in all, not one each.
    for handler in handlers:
        if not isinstance(handler, QueuedDelivery):
            handler.close()
    close_sinks(h for h in handlers if isinstance(h, QueuedDelivery))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        0 on a clean stop, 2 for a usage, configuration or address problem.
    """
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("LAB_UTILS_DEBUG") == "1"
    try:
        return _listen(args)
    except _FailureError as failure:
        if debug:
            raise
        hint = f"; {failure.hint}" if failure.hint else ""
        sys.stderr.write(f"error: {failure}{hint}\n")
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
