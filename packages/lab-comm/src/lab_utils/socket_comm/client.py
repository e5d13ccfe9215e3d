"""The client: sends a command to a daemon and returns its reply."""

from __future__ import annotations

import configparser
import errno
import select
import socket
from pathlib import Path
from types import TracebackType

from lab_utils.custom_logging import CustomLogger, getLogger
from lab_utils.socket_comm import ports
from lab_utils.socket_comm.inifile import (
    HOST,
    REMOTE_PORT,
    get_text,
    read_ini,
    read_secret_file,
    require_section,
    resolve_path,
)
from lab_utils.socket_comm.ports import checked_port
from lab_utils.socket_comm.tls import client_context
from lab_utils.socket_comm.wire import (
    DEFAULT_MAX_MESSAGE,
    MAGIC,
    MAX_HEADER,
    frame,
    parse_header,
    secret_bytes,
    sign,
)

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:  # ssl is imported only by a client that speaks TLS (see tls.py)
    import ssl

PROTOCOLS = ("auto", "framed", "legacy")
"""``auto`` speaks framed and falls back to legacy for 0.4/0.5 daemons."""


class ReplyTimeoutError(TimeoutError):
    """Connected, but the daemon did not reply in time (a hung handler or a busy 0.x loop).

    A :class:`TimeoutError`, so code catching ``OSError`` or ``TimeoutError`` still does.
    """


class Client:
    """Send commands to a :class:`~lab_utils.socket_comm.Server`.

    Parameters
    ----------
    config_file : str, optional
        INI file with ``[Overall]`` ``host`` and ``port`` (both required there) and,
        optionally, the daemon's ``secret_file``: a client may read the daemon's own file.
    host : str, optional
        Daemon address (default ``localhost``).
    port : int, optional
        Daemon port (default 1507): a whole number from 1 to 65535, or its text.
    secret : str or bytes, optional
        Shared secret of a daemon that requires authentication.
    secret_file : str, optional
        File holding that secret (used when ``secret`` is not given; before the config
        file's ``secret_file``).
    timeout : float, optional
        Seconds allowed to connect and for each read (None waits forever, as 0.4 did).
    protocol : str, optional
        ``'auto'`` (default), ``'framed'`` or ``'legacy'`` (the 0.4 exchange).
    persistent : bool, optional
        Keep one connection open for many framed commands (close with :meth:`close` or a
        ``with`` block).
    max_reply_size : int, optional
        Largest framed reply accepted, in bytes.
    tls : bool, optional
        Speak TLS, verifying the daemon's certificate (against ``tls_ca`` when given).
    tls_ca : str, optional
        CA bundle of the daemon's certificate (a lab CA).
    tls_cert, tls_key : str, optional
        Client certificate and key, for daemons that require one.

    Raises
    ------
    ValueError
        ``port`` is not from 1 to 65535, ``protocol`` is unknown, ``secret`` is empty, or
        ``tls_key`` is given without ``tls_cert``.
    configparser.Error
        The config file is missing, has no ``[Overall]`` section, lacks an option or holds
        a value that is not usable; the message names the file.
    OSError
        A secret or TLS file cannot be read; ``filename`` is the file.
    ssl.SSLError
        A TLS file holds no usable certificate or key; the message names the option and
        the file, as the daemon's does.
    """

    host: str = "localhost"
    """Daemon address."""
    port: int = 1507
    """Daemon port."""
    logger: CustomLogger
    """The client's logger."""

    def __init__(
        self,
        config_file: str | None = None,
        host: str | None = None,
        port: int | None = None,
        *,
        secret: str | bytes | None = None,
        secret_file: str | None = None,
        timeout: float | None = 30.0,
        protocol: str = "auto",
        persistent: bool = False,
        max_reply_size: int = DEFAULT_MAX_MESSAGE,
        tls: bool = False,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
        self.logger = getLogger()
        self.secret: bytes | None = None
        if config_file is not None:
            self.config(config_file)
        if host is not None:
            self.host = host
        # Checked here, not at the first send (a raw OverflowError or int() error then).
        self.port = checked_port(self.port if port is None else port, ports.CONNECT)
        if secret is not None:
            self.secret = secret_bytes(secret)
        elif secret_file is not None:
            self.secret = read_secret_file(secret_file, "secret_file")
        self.timeout = timeout
        self.protocol = protocol
        self.persistent = persistent
        self.max_reply_size = max_reply_size
        self._tls: ssl.SSLContext | None = None
        if tls_key and not tls_cert:
            # The key alone would be ignored: say so rather than connect without it.
            raise ValueError("tls_key given without tls_cert: give the client certificate too")
        if tls or tls_ca or tls_cert:
            self._tls = client_context(tls_ca, tls_cert, tls_key)
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._framed_confirmed = False

    def config(self, config_file: str) -> None:
        """Read ``[Overall]`` of ``config_file``: ``host``, ``port`` and ``secret_file``.

        ``secret_file`` is optional; it is the option the daemon reads, so a client on the
        same machine can use the daemon's own file. A relative path is relative to the
        config file's folder.

        Raises
        ------
        configparser.Error
            The file is missing, has no ``[Overall]`` section or lacks ``host`` or
            ``port``, or ``port`` is not a number; each message names the file.
        OSError
            The ``secret_file`` cannot be read.
        """
        section = "Overall"
        try:
            parser = read_ini(config_file)
            require_section(parser, section, config_file)
            host = get_text(parser, section, "host", config_file)
            self.host = HOST.read(host, section, "host", config_file)
            port = get_text(parser, section, "port", config_file)
            self.port = REMOTE_PORT.read(port, section, "port", config_file)
        except configparser.Error as error:
            self.logger.error("%s: %s", type(error).__name__, error)
            raise
        secret_file = parser.get(section, "secret_file", fallback="").strip()
        if secret_file:
            self.secret = read_secret_file(
                resolve_path(secret_file, config_file),
                f"secret_file of [{section}] in {Path(config_file).expanduser()}",
            )
        self.logger.debug("Configuration file loaded")

    def send_message(self, message: str) -> str:
        """Send ``message`` and return the daemon's reply.

        Parameters
        ----------
        message : str
            The command, e.g. ``'status'`` or ``'set --path {/a b}'``.

        Returns
        -------
        str
            The reply text.

        Raises
        ------
        TypeError
            ``message`` is not a string.
        OSError
            No daemon listens there, or the connection failed or timed out.
        """
        if not isinstance(message, str):
            raise TypeError(f"message must be a str, not {type(message).__name__}")
        self.logger.debug("Sending message to the server: %s", message)
        payload = message.encode("utf-8")
        try:
            if self.protocol == "legacy":
                reply = self._legacy(payload)
            else:
                reply_or_none = self._framed(payload)
                if reply_or_none is None:  # an old daemon answered: speak its language
                    self.protocol = "legacy"
                    self.logger.info(
                        "%s:%s is a 0.x daemon: using the legacy exchange", self.host, self.port
                    )
                    reply = self._legacy(payload)
                else:
                    reply = reply_or_none
        except OSError as error:
            self.logger.error("%s: %s", type(error).__name__, error)
            self.close()
            raise
        self.logger.debug("Reply received: %s", reply)
        return reply

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except TimeoutError:
            raise TimeoutError(
                errno.ETIMEDOUT, f"no connection within {self.timeout:g} s"
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            try:
                return self._tls.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        return sock

    def _legacy(self, payload: bytes) -> str:
        if not payload:
            raise ValueError("an empty message cannot be sent to a 0.x daemon (it would hang)")
        with self._connect() as sock:
            try:
                sock.sendall(payload)
                return _read_to_end(sock).decode("utf-8", "replace")
            except TimeoutError:
                raise self._reply_timeout() from None

    def _framed(self, payload: bytes) -> str | None:
        auth = sign(self.secret, payload) if self.secret else None
        if self._sock is not None and _closed_by_peer(self._sock, self._tls is not None):
            # The daemon closed an idle persistent connection (its connection_timeout):
            # nothing was sent on it yet, so a new connection is safe.
            self.close()
        sock = self._sock if self._sock is not None else self._connect()
        try:
            sock.sendall(frame(payload, auth))
            reply = self._read_frame(sock)
        except TimeoutError:
            sock.close()
            self._sock = None
            raise self._reply_timeout() from None
        except BaseException:
            sock.close()
            self._sock = None
            raise
        if reply is None or not self.persistent:
            sock.close()
            self._sock = None
        else:
            self._sock = sock
        return reply

    def _read_frame(self, sock: socket.socket) -> str | None:
        buffer = self._buffer
        while True:
            newline = buffer.find(b"\n", 0, MAX_HEADER)
            if (newline >= 0 or len(buffer) >= len(MAGIC)) and not buffer.startswith(MAGIC):
                # Not our framing: an old daemon answering our header with an error.
                buffer.clear()
                _read_to_end(sock)
                return None
            if newline >= 0:
                header = parse_header(bytes(buffer[:newline]), self.max_reply_size)
                end = newline + 1 + header.length
                while len(buffer) < end:
                    chunk = sock.recv(max(65536, end - len(buffer)))
                    if not chunk:
                        raise ConnectionError("the daemon closed the connection mid-reply")
                    buffer += chunk
                reply = bytes(buffer[newline + 1 : end])
                del buffer[:end]
                self._framed_confirmed = True
                return reply.decode("utf-8", "replace")
            chunk = sock.recv(65536)
            if not chunk:
                if buffer or (self.protocol == "auto" and not self._framed_confirmed):
                    # A short or empty answer and a close: how a 0.x daemon reacts to our
                    # header (0.4 even sends nothing when its help text crashes).
                    buffer.clear()
                    return None
                raise ConnectionError("the daemon closed the connection without replying")
            buffer += chunk

    def _reply_timeout(self) -> ReplyTimeoutError:
        return ReplyTimeoutError(errno.ETIMEDOUT, f"no reply within {self.timeout:g} s")

    def close(self) -> None:
        """Close a persistent connection (harmless when none is open)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer.clear()

    def __enter__(self) -> Client:
        """Return the client; the connection closes when the block ends."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection."""
        self.close()


def _closed_by_peer(sock: socket.socket, tls: bool) -> bool:
    """Tell whether the peer has closed an idle connection (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        if not tls:
            return sock.recv(1, socket.MSG_PEEK) == b""
        import ssl  # a TLS client has imported it already (see tls.py)

        # TLS cannot peek; an idle connection may hold session tickets, which give no data.
        timeout = sock.gettimeout()
        sock.settimeout(0)
        try:
            sock.recv(1)
        except ssl.SSLWantReadError:
            return False
        finally:
            sock.settimeout(timeout)
        return True  # closed, or data nobody asked for: start afresh either way
    except (OSError, ValueError):
        return True


def _read_to_end(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
