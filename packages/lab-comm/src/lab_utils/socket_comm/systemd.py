"""Telling systemd how a ``Type=notify`` service is doing, with the standard library only.

systemd passes a datagram socket in ``NOTIFY_SOCKET`` (a path, or ``@name`` for the
abstract namespace); the service sends newline-separated ``KEY=value`` assignments to it.
Outside systemd the variable is unset and nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket

NOTIFY_SOCKET = "NOTIFY_SOCKET"
"""The environment variable naming systemd's notification socket."""

logger = logging.getLogger(__name__)


def notify(*assignments: str) -> bool:
    """Send ``assignments`` (``"READY=1"``, ``"STATUS=..."``) to systemd, if it asked for them.

    Parameters
    ----------
    *assignments : str
        ``KEY=value`` strings, sent together in one datagram.

    Returns
    -------
    bool
        True when the message was sent; False outside systemd or when sending failed (which
        is logged: systemd would then stop or restart the service on its own timeout).
    """
    address = os.environ.get(NOTIFY_SOCKET)
    if not address or not hasattr(socket, "AF_UNIX"):
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    message = "\n".join(assignments).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message)
    except OSError as error:
        logger.warning(
            "Could not notify systemd at %s (%s): %s",
            os.environ.get(NOTIFY_SOCKET),
            ", ".join(assignments),
            error,
        )
        return False
    return True
