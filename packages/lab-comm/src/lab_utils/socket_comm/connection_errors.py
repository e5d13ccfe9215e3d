"""What went wrong reaching a daemon, in an operator's words, and whether it is down."""

from __future__ import annotations

import errno
import socket
import sys

from lab_utils.socket_comm.client import ReplyTimeoutError
from lab_utils.socket_comm.wire import AUTH_REFUSAL

ERROR_REPLIES = ("Error!", "Unknown exception!", "Daemon error")
"""Starts of the replies in which a daemon says a command failed."""

_UNREACHABLE = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}


def is_down(error: BaseException) -> bool:
    """Tell whether ``error`` (from ``send_message``) means that nothing answers there.

    A connection that could not be made is *down*; one that broke or timed out once made
    is a failure of a daemon that is there.
    """
    if isinstance(error, ReplyTimeoutError):
        return False
    if isinstance(error, (ConnectionRefusedError, socket.gaierror, TimeoutError)):
        return True
    return isinstance(error, OSError) and error.errno in _UNREACHABLE


def explain(error: BaseException) -> tuple[str, str | None]:
    """Return what went wrong talking to a daemon, and a hint when one is obvious.

    Parameters
    ----------
    error : BaseException
        What :meth:`~lab_utils.socket_comm.Client.send_message` raised.

    Returns
    -------
    tuple
        ``(what, hint)``; ``hint`` may be None.
    """
    if isinstance(error, ConnectionRefusedError):
        return (
            "cannot reach the daemon: connection refused",
            "is the daemon running, and listening on this host and port?",
        )
    if isinstance(error, socket.gaierror):
        return f"cannot reach the daemon: unknown host ({error.strerror})", None
    if isinstance(error, ReplyTimeoutError):
        return f"connected, but {error.strerror}", "the daemon may be busy or stuck in a command"
    if isinstance(error, TimeoutError):
        return (
            f"cannot reach the daemon: {error.strerror or 'timed out'}",
            "check the host, the port and any firewall in between",
        )
    ssl = sys.modules.get("ssl")  # not imported: the error is no TLS error (see tls.py)
    if ssl is not None and isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS: the daemon's certificate is not trusted ({error.verify_message})",
            "give the CA that signed it with --tls-ca",
        )
    if ssl is not None and isinstance(error, ssl.SSLError):
        return (
            f"TLS handshake failed ({error.reason or error})",
            "does the daemon speak TLS (tls_cert in its [Overall])?",
        )
    if isinstance(error, ConnectionError):
        return f"the connection broke: {error.strerror or error}", None
    if isinstance(error, OSError):
        return f"cannot reach the daemon: {error.strerror or error}", None
    return f"{type(error).__name__}: {error}", None


def explain_refusal(reply: str) -> tuple[str, str] | None:
    """Return ``(what, hint)`` when ``reply`` refuses an unauthenticated message, else None.

    Parameters
    ----------
    reply : str
        A daemon's reply.

    Returns
    -------
    tuple or None
        The explanation of an authentication refusal.
    """
    if not reply.startswith(AUTH_REFUSAL):
        return None
    detail = reply[reply.rfind("(") + 1 : -1] if reply.endswith(")") else "authentication required"
    return (
        f"the daemon refused the message: {detail}",
        "give its shared secret with --secret-file FILE or LAB_COMM_SECRET",
    )
