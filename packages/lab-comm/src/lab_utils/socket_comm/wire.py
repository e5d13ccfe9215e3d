r"""What travels on the socket: the legacy unframed exchange and the framed protocol.

Legacy (0.4/0.5 peers): the client sends the UTF-8 message with no terminator and waits;
the server answers what its first read returned, then closes. The end of the reply is the
close.

Framed (our client and server): each message and each reply is a header line followed by
exactly ``length`` bytes of UTF-8::

    LABCOMM/1 <length>[ <auth>]\\n<payload>

A connection may carry many framed messages (persistent mode). An old server reads the
header as an unknown command and answers ``Error! ...`` with no side effect, which tells our
client to fall back to the legacy exchange.
"""

from __future__ import annotations

import time

MAGIC = b"LABCOMM/1 "
"""Start of every framed header."""

MAX_HEADER = 256
"""A header line longer than this is garbage."""

DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024
"""Default limit on a message or a reply, in bytes."""

AUTH_REFUSAL = "Error! Authentication required"
"""How a daemon with a shared secret starts its reply to a message it refuses (followed by
why): the daemon builds its refusal on it and clients recognise a refusal by it."""

AUTH_WINDOW = 60.0
"""Seconds an authenticated message stays valid (clocks of client and server may differ
by this much); a nonce is never accepted twice within it."""


class FrameError(ValueError):
    """A framed header is malformed or announces too much."""


class Header:
    """A parsed frame header (a plain class: ``dataclasses`` imports ``inspect``, 10 ms).

    Parameters
    ----------
    length : int
        Bytes of the message that follow the header line.
    auth : str, optional
        The authentication field, when the sender signed the message.
    """

    __slots__ = ("auth", "length")

    def __init__(self, length: int, auth: str | None) -> None:
        self.length = length
        """Bytes of the message that follow the header line."""
        self.auth = auth
        """The authentication field, when the sender signed the message."""


def frame(payload: bytes, auth: str | None = None) -> bytes:
    """Return ``payload`` with its header."""
    extra = f" {auth}" if auth else ""
    return MAGIC + f"{len(payload)}{extra}\n".encode("ascii") + payload


def parse_header(line: bytes, max_length: int) -> Header:
    """Parse a header line (without its newline).

    Raises
    ------
    FrameError
        When the line is not ``LABCOMM/1 <length>[ <auth>]`` or the length exceeds ``max_length``.
    """
    if not line.startswith(MAGIC):
        raise FrameError("not a framed message")
    fields = line[len(MAGIC) :].decode("ascii", "replace").split(" ")
    if not fields[0].isdigit() or len(fields) > 2:
        raise FrameError("malformed frame header")
    length = int(fields[0])
    if length > max_length:
        raise FrameError(f"message of {length} bytes exceeds the limit of {max_length} bytes")
    return Header(length, fields[1] if len(fields) == 2 else None)


def secret_bytes(secret: str | bytes) -> bytes:
    """Return a shared secret given as text or bytes as bytes.

    Raises
    ------
    ValueError
        The secret is empty: it would turn authentication off without a word (an unset
        environment variable passed along, say).
    """
    value = secret.encode() if isinstance(secret, str) else bytes(secret)
    if not value:
        raise ValueError("the shared secret is empty: give one, or none to turn authentication off")
    return value


def sign(secret: bytes, payload: bytes, now: float | None = None) -> str:
    """Return the auth field proving knowledge of ``secret`` for ``payload``.

    ``<unix time>:<nonce>:<HMAC-SHA256 of time, nonce and payload>``; the secret itself
    never travels.
    """
    # Here, not at the top: hashlib and secrets cost 4-5 ms at import, and only peers
    # with a shared secret sign.
    import hashlib
    import hmac
    import secrets

    stamp = f"{time.time() if now is None else now:.3f}"
    nonce = secrets.token_hex(12)
    mac = hmac.new(secret, f"{stamp}:{nonce}:".encode() + payload, hashlib.sha256).hexdigest()
    return f"{stamp}:{nonce}:{mac}"


class Verifier:
    """Checks auth fields: right HMAC, fresh time stamp, nonce never seen before."""

    def __init__(self, secret: bytes, window: float = AUTH_WINDOW) -> None:
        import hashlib  # here, as in sign(): only daemons with a secret verify
        import hmac

        self._hmac = hmac
        self._sha256 = hashlib.sha256
        self._secret = secret
        self._window = window
        self._seen: dict[str, float] = {}

    def check(self, auth: str | None, payload: bytes, now: float | None = None) -> str | None:
        """Return None when ``auth`` is valid for ``payload``, else why it is not."""
        if not auth:
            return "authentication required"
        try:
            stamp_text, nonce, mac = auth.split(":")
            stamp = float(stamp_text)
        except ValueError:
            return "malformed authentication"
        now = time.time() if now is None else now
        expected = self._hmac.new(
            self._secret, f"{stamp_text}:{nonce}:".encode() + payload, self._sha256
        ).hexdigest()
        if not self._hmac.compare_digest(mac, expected):
            return "wrong secret"
        if abs(now - stamp) > self._window:
            return "stale authentication (check the clocks of client and daemon)"
        self._seen = {n: t for n, t in self._seen.items() if now - t <= self._window}
        if nonce in self._seen:
            return "replayed message"
        self._seen[nonce] = now
        return None
