"""``lab-db serve``: an embedded PostgreSQL for the user, until Ctrl-C or SIGTERM.

It prints the connection string and a ready ``[Overall]`` block, so that the other
commands (``DATABASE_URL=... lab-db latest T``) and other programs can use the server.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TextIO

from lab_utils.database.cli_errors import CommandError
from lab_utils.database.embedded import EmbeddedError, EmbeddedPostgres


def announcement(server: EmbeddedPostgres, database: str) -> str:
    """Return what ``serve`` prints: the DSN, the URL and an ``[Overall]`` block."""
    return (
        f"PostgreSQL serving database {database!r} on {server.host}:{server.port};"
        " Ctrl-C stops it\n"
        f"DSN: host={server.host} port={server.port} user={server.user} dbname={database}\n"
        f"DATABASE_URL=postgresql://{server.user}@{server.host}:{server.port}/{database}\n"
        "\n"
        "# database.ini, for --config FILE or Database(config_file=...)\n"
        "[Overall]\n"
        f"host = {server.host}\n"
        f"port = {server.port}\n"
        f"database = {database}\n"
        f"user = {server.user}\n"
        "passfile = ~/.pgpass\n"
    )


def serve(data: str | None, port: int | None, database: str, out: TextIO) -> int:
    """Run the server until interrupted; return 0, or raise :class:`CommandError`."""
    stop = threading.Event()

    def _stop(number: int, frame: FrameType | None) -> None:
        stop.set()

    # SIGTERM (systemd, kill) ends it as cleanly as Ctrl-C does.
    previous = {n: signal.signal(n, _stop) for n in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server = EmbeddedPostgres(Path(data) if data else None, port).start()
        except EmbeddedError as error:
            raise CommandError(str(error)) from None
        try:
            server.create_database(database)
            out.write(announcement(server, database))
            out.flush()
            while not stop.wait(0.5):
                if not server.running:
                    raise CommandError(
                        "the server stopped by itself", f"{server.host}:{server.port}"
                    )
        finally:
            server.stop()
        out.write("stopped\n")
        return 0
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
