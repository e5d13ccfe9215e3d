"""Command line: ``python -m lab_utils.custom_logging listen --port 9020 [--config FILE]``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from lab_utils.custom_logging.config import build_handlers, read_config
from lab_utils.custom_logging.listener import AlarmListener, console_handler


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lab_utils.custom_logging")
    commands = parser.add_subparsers(dest="command", required=True)
    listen = commands.add_parser("listen", help="print incoming alarm records, coloured")
    listen.add_argument("--host", default="127.0.0.1", help="address to listen on")
    listen.add_argument("--port", type=int, default=9020, help="TCP port (0: any free port)")
    listen.add_argument(
        "--config", help="logging INI file whose file, mail and Slack handlers also get the records"
    )
    args = parser.parse_args(argv)

    handlers = [console_handler()]
    if args.config:
        extra, warnings = build_handlers(read_config(args.config), only=("file", "mail", "Slack"))
        handlers += extra
        for text in warnings:
            sys.stderr.write(f"{text}\n")
    try:
        server = AlarmListener(args.host, args.port, handlers)
    except OSError as error:
        sys.stderr.write(f"cannot listen on {args.host}:{args.port}: {error}\n")
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write(f"listening for alarm records on {args.host}:{server.port}\n")
    sys.stdout.flush()
    with server:
        server.serve_forever(poll_interval=0.2)
    for handler in handlers:
        handler.flush()
        handler.close()
    logging.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
