"""Alarm records over TCP, one record per connection, for a socket_comm server."""

from __future__ import annotations

import logging
import logging.handlers
import socket

from lab_utils.custom_logging.queued import QueuedDelivery

DEFAULT_ALARM_PORT = logging.handlers.DEFAULT_TCP_LOGGING_PORT
"""9020, the port ``[AlarmLogger] port = default`` stands for."""


class NonPickledSocketHandler(QueuedDelivery, logging.handlers.SocketHandler):
    """Socket handler that sends each record as plain UTF-8 text on its own connection.

    Wire format: connect, send the formatted record (by default a socket_comm command,
    see :data:`~lab_utils.custom_logging.formatters.ALARM_FORMAT`), half-close, read the
    reply until the server closes, close. One record per connection is what a socket_comm
    server (ours or an unmodified 0.4/0.5 one) reads, so records are never glued together.
    Delivery happens in a worker thread; while the listener is down records are dropped
    and the failure is reported once.

    Parameters
    ----------
    host : str
        Listener host name or address.
    port : int
        Listener TCP port.
    timeout : float, optional
        Seconds allowed for connecting, sending and reading the reply.
    """

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        logging.handlers.SocketHandler.__init__(self, host, port)
        self.timeout = timeout
        self.start_courier(f"alarm socket {host}:{port}")

    def deliver(self, record: logging.LogRecord) -> None:
        """Send ``record`` on a new connection and wait for the server to close it.

        Parameters
        ----------
        record : logging.LogRecord
            The record to send.
        """
        payload = self.format(record).encode("utf-8")
        address = (self.host, int(self.port or DEFAULT_ALARM_PORT))
        with socket.create_connection(address, timeout=self.timeout) as conn:
            conn.sendall(payload)
            try:
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(4096):
                    pass
            except OSError:
                # The record is out; a server that resets instead of replying is fine.
                pass

    def makePickle(self, record: logging.LogRecord) -> bytes:  # noqa: N802 - stdlib name
        """Return the record's formatted text as UTF-8 (nothing is pickled)."""
        return self.format(record).encode("utf-8")
