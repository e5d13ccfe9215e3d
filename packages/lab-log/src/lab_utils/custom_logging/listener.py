"""A receiver for alarm records: the minimal central alarm console.

It accepts the alarm format of :data:`~lab_utils.custom_logging.formatters.ALARM_FORMAT`
over TCP - one record per connection as :class:`NonPickledSocketHandler` sends, or several
glued together as 0.4's persistent handler did - and hands each record, rebuilt as a
:class:`logging.LogRecord`, to its handlers: a coloured console, and optionally the file,
mail and Slack handlers of a logging config file.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterable, Iterator

from lab_utils.custom_logging.formatters import COLOURED_FORMAT, DATE_FORMAT, ColoredFormatter
from lab_utils.custom_logging.levels import LEVEL_NAMES

_HEADER = re.compile(
    r"\{(?P<name>[^{}]*)\} --date \{(?P<date>[^{}]*)\} --level \{(?P<level>[^{}]*)\}"
    r" --app \{[^{}]*\} --module \{(?P<module>[^{}]*)\} --function \{(?P<function>[^{}]*)\}"
    r" --message \{"
)

MAX_CONNECTION_BYTES = 1 << 20
"""A connection sending more than this is cut off (records are small)."""


def parse_alarms(text: str) -> Iterator[logging.LogRecord]:
    """Rebuild the records in ``text``: one alarm message, or several glued together.

    Parameters
    ----------
    text : str
        What arrived on one connection.

    Yields
    ------
    logging.LogRecord
        One record per alarm message found; text that is not an alarm is skipped.
    """
    headers = list(_HEADER.finditer(text))
    for n, header in enumerate(headers):
        end = headers[n + 1].start() if n + 1 < len(headers) else len(text)
        message = text[header.end() : end].rstrip()
        message = message.removesuffix("}")
        level_name = header["level"].strip().upper()
        level = logging.getLevelName(level_name) if level_name in LEVEL_NAMES else logging.WARNING
        record = logging.makeLogRecord(
            {
                "name": header["name"],
                "levelno": level,
                "levelname": level_name or "WARNING",
                "module": header["module"],
                "funcName": header["function"],
                "msg": message,
                "alarm_date": header["date"],
            }
        )
        with contextlib.suppress(ValueError):  # unparsable: keep the arrival time
            record.created = time.mktime(time.strptime(header["date"], DATE_FORMAT))
        yield record


class AlarmListener(socketserver.ThreadingTCPServer):
    """TCP server that turns incoming alarm messages into records for ``handlers``.

    Parameters
    ----------
    host : str
        Address to listen on (loopback by default).
    port : int
        TCP port; 0 picks a free one (see :attr:`port`).
    handlers : iterable of logging.Handler
        Where each received record goes.
    idle_timeout : float, optional
        A connection that sends nothing for this long is read as complete.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9020,
        handlers: Iterable[logging.Handler] = (),
        idle_timeout: float = 2.0,
    ) -> None:
        self.handlers = list(handlers)
        self.idle_timeout = idle_timeout
        self.received = 0
        """Records received so far."""
        self._count_lock = threading.Lock()
        super().__init__((host, port), _AlarmConnection)

    @property
    def port(self) -> int:
        """The TCP port listened on."""
        return int(self.server_address[1])

    def dispatch(self, record: logging.LogRecord) -> None:
        """Hand ``record`` to every handler whose level it reaches."""
        with self._count_lock:
            self.received += 1
        for handler in self.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


class _AlarmConnection(socketserver.BaseRequestHandler):
    server: AlarmListener

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(self.server.idle_timeout)
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= MAX_CONNECTION_BYTES:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except (TimeoutError, OSError):
            pass  # an old sender never half-closes: what came so far is the message
        for record in parse_alarms(b"".join(chunks).decode("utf-8", "replace")):
            self.server.dispatch(record)


def console_handler() -> logging.Handler:
    """Build the coloured stdout handler of the alarm console."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(ColoredFormatter(fmt=COLOURED_FORMAT, datefmt=DATE_FORMAT))
    return handler
