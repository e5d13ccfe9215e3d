"""What a daemon does with the bytes of one connection: legacy detection, framing, authentication.

The transport hands every chunk it reads to :meth:`Protocol.received` together with the
connection's :class:`Exchange` state, and sends back what it returns. The encoding of
headers and the HMAC live in :mod:`lab_utils.socket_comm.wire`; this module decides which
of the two exchanges a connection speaks and when a message is complete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lab_utils.socket_comm.wire import (
    AUTH_REFUSAL,
    MAGIC,
    MAX_HEADER,
    FrameError,
    Verifier,
    frame,
    parse_header,
)

AUTH_REQUIRED = (
    f"{AUTH_REFUSAL}: this daemon only accepts commands from clients that know its shared secret"
)
"""Reply to a message without valid authentication, when the daemon has a secret."""

NOT_UTF8 = "Error! The message is not valid UTF-8"
"""Reply to a message that cannot be decoded."""

_MAGIC_LENGTH = len(MAGIC)
_MAGIC_FIRST = MAGIC[0]
_NOT_UTF8_BYTES = NOT_UTF8.encode()


class Exchange:
    """Protocol state of one connection.

    Attributes
    ----------
    inbuf : bytearray
        Bytes received and not yet answered.
    framed : bool or None
        True for a framed peer, False for a legacy one, None while undecided.
    """

    __slots__ = ("framed", "inbuf")

    def __init__(self) -> None:
        self.inbuf = bytearray()
        self.framed: bool | None = None


class Protocol:
    """Turns received bytes into replies, for every connection of a daemon.

    Parameters
    ----------
    answer : callable
        Takes the text of one message and returns the reply text (the daemon's ``execute``).
    stopping : callable
        True once the daemon is stopping: pipelined messages after a ``quit`` stay unanswered.
    logger : logging.Logger
        Where refused messages are reported.
    verifier : Verifier, optional
        Checks the authentication of framed messages; None when the daemon has no secret.
    max_message_size : int
        Largest framed message accepted, in bytes.
    """

    def __init__(
        self,
        answer: Callable[[str], str],
        stopping: Callable[[], bool],
        logger: logging.Logger,
        verifier: Verifier | None,
        max_message_size: int,
    ) -> None:
        self.answer = answer
        self.stopping = stopping
        self.logger = logger
        self.verifier = verifier
        self.max_message_size = max_message_size

    def received(self, exchange: Exchange, data: bytes) -> tuple[bytes, bool]:
        """Take ``data`` read from a connection.

        Parameters
        ----------
        exchange : Exchange
            The connection's state.
        data : bytes
            What was just read (not empty).

        Returns
        -------
        tuple of (bytes, bool)
            The bytes to send (possibly none) and whether to close the connection after them.
        """
        if exchange.framed is None:
            if not exchange.inbuf and data[:_MAGIC_LENGTH] != MAGIC[: len(data)]:
                # The common case of an old client: one message in one read, answered at once.
                exchange.framed = False
                return self.answer_legacy(data), True
            exchange.inbuf += data
            head = bytes(exchange.inbuf[:_MAGIC_LENGTH])
            if len(head) < _MAGIC_LENGTH and MAGIC.startswith(head):
                return b"", False  # maybe the start of a header: wait for more (or the timeout)
            exchange.framed = head == MAGIC
            if not exchange.framed:
                data = bytes(exchange.inbuf)
                exchange.inbuf.clear()
                return self.answer_legacy(data), True
        else:
            exchange.inbuf += data
        return self._frames(exchange)

    def one_shot(self, data: bytes) -> bytes | None:
        """Answer ``data``, the first read of a new connection, if it is a legacy message.

        Returns
        -------
        bytes or None
            The reply, after which the connection is closed; None when ``data`` is or may
            be the start of a framed message (then use :meth:`received`).
        """
        # The path of every one-shot request: a first byte other than the header's says
        # "legacy" at once, and answer_legacy is inlined for a daemon without a secret.
        if not data or data[0] == _MAGIC_FIRST or self.verifier is not None:
            if data[:_MAGIC_LENGTH] == MAGIC[: len(data)]:
                return None
            return self.answer_legacy(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return _NOT_UTF8_BYTES
        return self.answer(text).encode("utf-8", "replace")

    def expired(self, exchange: Exchange) -> bytes | None:
        """Say what to send to a connection that stayed idle too long before it is closed.

        A short legacy message that looked like the start of a header is answered now;
        anything else gets nothing.
        """
        if exchange.framed is None and exchange.inbuf:
            data = bytes(exchange.inbuf)
            exchange.inbuf.clear()
            return self.answer_legacy(data)
        return None

    def answer_legacy(self, raw: bytes) -> bytes:
        """Answer one unframed message (the whole of what the first read returned)."""
        if self.verifier is not None:
            self.logger.warning("Unauthenticated (legacy) message refused")
            return AUTH_REQUIRED.encode()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _NOT_UTF8_BYTES
        return self.answer(text).encode("utf-8", "replace")

    def _frames(self, exchange: Exchange) -> tuple[bytes, bool]:
        out = bytearray()
        inbuf = exchange.inbuf
        while inbuf and not self.stopping():
            newline = inbuf.find(b"\n", 0, MAX_HEADER)
            if newline < 0:
                if len(inbuf) >= MAX_HEADER:
                    return bytes(out + frame(b"Error! Malformed frame header")), True
                break
            try:
                header = parse_header(bytes(inbuf[:newline]), self.max_message_size)
            except FrameError as error:
                return bytes(out + frame(f"Error! {error}".encode())), True
            end = newline + 1 + header.length
            if len(inbuf) < end:
                break
            payload = bytes(inbuf[newline + 1 : end])
            del inbuf[:end]
            out += frame(self._answer_framed(payload, header.auth).encode("utf-8"))
        return bytes(out), False

    def _answer_framed(self, payload: bytes, auth: str | None) -> str:
        if self.verifier is not None:
            problem = self.verifier.check(auth, payload)
            if problem is not None:
                self.logger.warning("Message refused: %s", problem)
                return f"{AUTH_REQUIRED} ({problem})"
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return NOT_UTF8
        return self.answer(text)
