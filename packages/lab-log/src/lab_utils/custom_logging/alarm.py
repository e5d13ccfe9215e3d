"""The alarm protocol: its format, the sender and the receiver, in one place.

An alarm record travels as plain UTF-8 text, one record per TCP connection, shaped as a
socket_comm command whose name is the logger name (:data:`ALARM_FORMAT`). The sender,
:class:`NonPickledSocketHandler`, connects, sends, half-closes and reads the reply until
the server closes; a socket_comm server (ours or an unmodified 0.4/0.5 one) reads exactly
that. The server's answer is the acknowledgement: a record counts as delivered only when
the server has closed the connection within the timeout, with no error reply
(:data:`ERROR_REPLIES`).

The receiver, :class:`AlarmListener` (the minimal central alarm console), reads the same
text - or several records glued together, as 0.4's persistent handler sent them - and
rebuilds each one as a :class:`logging.LogRecord` with :func:`parse_alarms`; it answers
with the close alone.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import socket
import socketserver
import threading
import time
from collections.abc import Iterable, Iterator

from lab_utils.custom_logging.delivery import QueuedDelivery
from lab_utils.custom_logging.formatters import DATE_FORMAT
from lab_utils.custom_logging.levels import LEVEL_NAMES

DEFAULT_ALARM_PORT = logging.handlers.DEFAULT_TCP_LOGGING_PORT
"""9020, the port ``[AlarmLogger] port = default`` stands for."""

ALARM_FORMAT = (
    "{%(name)s} --date {%(asctime)s} --level {%(levelname)s} --app {%(name)s}"
    " --module {%(module)s} --function {%(funcName)s} --message {%(message)s}"
)
"""An alarm record as a socket_comm command: the logger name is the command."""

_HEADER = re.compile(
    r"\{(?P<name>[^{}]*)\} --date \{(?P<date>[^{}]*)\} --level \{(?P<level>[^{}]*)\}"
    r" --app \{[^{}]*\} --module \{(?P<module>[^{}]*)\} --function \{(?P<function>[^{}]*)\}"
    r" --message \{"
)
"""Where :data:`ALARM_FORMAT` begins a record: the reader's side of the same format."""

MAX_CONNECTION_BYTES = 1 << 20
"""A connection sending more than this is cut off (records are small)."""

ERROR_REPLIES = ("Error!", "Unknown exception!", "Daemon error")
"""How a socket_comm server (0.4, 0.5 or lab-comm) starts a reply refusing a command: an
unknown logger name, a message it could not parse, a handler that failed."""

_REPLY_KEPT = 1024
"""Bytes of the reply kept to tell an error reply (the rest is read and dropped)."""


class AlarmRefusedError(Exception):
    """The alarm server answered the record with an error reply."""


def alarm_formatter() -> logging.Formatter:
    """Return the formatter that writes :data:`ALARM_FORMAT` (local time to the second)."""
    return logging.Formatter(fmt=ALARM_FORMAT, datefmt=DATE_FORMAT)


# -- the sender -------------------------------------------------------------------------
class NonPickledSocketHandler(QueuedDelivery, logging.handlers.SocketHandler):
    """Socket handler that sends each record as plain UTF-8 text on its own connection.

    Wire format: connect, send the formatted record (by default a socket_comm command,
    see :data:`ALARM_FORMAT`), half-close, read the
    reply until the server closes, close. One record per connection is what a socket_comm
    server (ours or an unmodified 0.4/0.5 one) reads, so records are never glued together.
    A record is delivered when the server has answered and closed within ``timeout``
    without an error reply; no answer in time, a reset or an error reply is a failure,
    like a refused connection. Delivery happens in a worker thread; while the listener
    is down or does not answer records are dropped and the failure is reported once.

    Parameters
    ----------
    host : str
        Listener host name or address.
    port : int
        Listener TCP port.
    timeout : float, optional
        Seconds allowed for one delivery: connecting, sending and the server's answer.
    """

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        logging.handlers.SocketHandler.__init__(self, host, port)
        self.timeout = timeout
        self.start_courier(f"alarm socket {host}:{port}")

    def deliver(self, record: logging.LogRecord) -> None:
        """Send ``record`` on a new connection and wait for the server's answer.

        The whole exchange, connecting included, takes at most ``timeout`` seconds.

        Parameters
        ----------
        record : logging.LogRecord
            The record to send.

        Raises
        ------
        TimeoutError
            The server did not answer and close the connection in time: it may never
            have read the record.
        ConnectionResetError
            The server reset the connection instead of answering.
        AlarmRefusedError
            The server answered with an error reply (:data:`ERROR_REPLIES`).
        OSError
            The connection could not be made or broke.
        """
        payload = self.render(record).encode("utf-8")
        address = (self.host, int(self.port or DEFAULT_ALARM_PORT))
        deadline = time.monotonic() + self.timeout
        with socket.create_connection(address, timeout=self.timeout) as conn:
            conn.settimeout(self._remaining(deadline))
            conn.sendall(payload)
            try:  # noqa: SIM105 - contextlib is not imported for this one line
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server closed already: what it answered is read next
            reply = self._read_reply(conn, deadline)
        if reply.startswith(ERROR_REPLIES):
            answer = reply.splitlines()[0][:200]
            raise AlarmRefusedError(f"the alarm server refused the record: {answer}")

    def _remaining(self, deadline: float) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the alarm server did not answer within {self.timeout:g} s")
        return remaining

    def _read_reply(self, conn: socket.socket, deadline: float) -> str:
        # The end of the answer is the server's close, as in the socket_comm exchange; a
        # server that trickles bytes cannot stretch the attempt past the deadline.
        kept = b""
        while True:
            conn.settimeout(self._remaining(deadline))
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                raise TimeoutError(
                    f"the alarm server did not answer within {self.timeout:g} s"
                ) from None
            except ConnectionResetError as error:
                raise ConnectionResetError(
                    error.errno,
                    "the alarm server reset the connection instead of answering (a 0.x"
                    " server reads the first 1024 bytes of a record, 4096 from 0.5.2, and"
                    " may have received it cut short)",
                ) from None
            if not chunk:
                return kept.decode("utf-8", "replace")
            if len(kept) < _REPLY_KEPT:
                kept += chunk[: _REPLY_KEPT - len(kept)]

    def makePickle(self, record: logging.LogRecord) -> bytes:  # noqa: N802 - stdlib name
        """Return the record's formatted text as UTF-8 (nothing is pickled)."""
        return self.render(record).encode("utf-8")


# -- the receiver -----------------------------------------------------------------------


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
        try:  # noqa: SIM105 - contextlib is not imported for this one line
            record.created = time.mktime(time.strptime(header["date"], DATE_FORMAT))
        except ValueError:
            pass  # unparsable: keep the arrival time
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
