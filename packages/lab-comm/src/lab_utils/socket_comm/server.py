"""The daemon: a TCP command server with a PID lock, compatible with lab_utils 0.4.

Connections are served concurrently by one event loop (an idle or slow client never blocks
the others); command handlers run one at a time in that loop, as in 0.4, so handlers that
share ``self.namespace`` and ``self.reply`` need no change.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import selectors
import signal
import socket
import ssl
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import zc.lockfile

from lab_utils.custom_logging import CustomLogger, getLogger
from lab_utils.socket_comm.commands import add_declared_commands
from lab_utils.socket_comm.grammar import split_message
from lab_utils.socket_comm.parser import ArgumentParser, MessageError
from lab_utils.socket_comm.wire import (
    DEFAULT_MAX_MESSAGE,
    MAGIC,
    MAX_HEADER,
    FrameError,
    Verifier,
    frame,
    parse_header,
)

DOCS_URL = "https://lab-utils.readthedocs.io"
"""Where the epilog of the default parser points."""

WHICH_MISSING = "Daemon error, maybe you forgot to set the 'which' argument?"
UNKNOWN_EXCEPTION = "Unknown exception! Check daemon log!"
AUTH_REQUIRED = (
    "Error! Authentication required: this daemon only accepts commands from clients that"
    " know its shared secret"
)

_READ_SIZE = 65536


def _excerpt(text: str, limit: int = 200) -> str:
    """Shorten ``text`` for a log line (messages may be megabytes long)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class _Connection:
    """State of one client connection."""

    __slots__ = ("closing", "framed", "handshaking", "inbuf", "last_active", "outbuf", "sock")

    def __init__(self, sock: socket.socket, handshaking: bool = False) -> None:
        self.sock = sock
        self.handshaking = handshaking
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.framed: bool | None = None
        self.closing = False
        self.last_active = time.monotonic()


class Server:
    """A daemon that takes commands over TCP.

    Subclass it, add commands to :attr:`sp` (or override :meth:`create_parser`), and call
    :meth:`start_daemon`. Each command's handler reads :attr:`namespace` and writes
    :attr:`reply`.

    Parameters
    ----------
    config_file : str, optional
        INI file with an ``[Overall]`` section (``host``, ``port`` and the optional limits
        and ``secret_file``).
    pid_file_name : str, optional
        Lock file; a second daemon with the same file raises ``zc.lockfile.LockError``.
    host : str, optional
        Address to bind (default ``localhost``).
    port : int, optional
        TCP port (default 1507).
    secret : str or bytes, optional
        Shared secret; when set, only clients that prove they know it are served.
    tls_cert, tls_key : str, optional
        Certificate chain and private key (PEM): the daemon then speaks TLS only.
    tls_ca : str, optional
        CA bundle; when given, clients must present a certificate it signed.

    Raises
    ------
    zc.lockfile.LockError
        Another daemon holds the PID lock.
    configparser.Error
        The config file is invalid.
    """

    quit_flag: bool = False
    """Set to stop the loop after the current command."""
    host: str = "localhost"
    """Address to bind."""
    port: int = 1507
    """TCP port."""
    sock: socket.socket | None = None
    """The listening socket, once bound."""
    address: int | None = None
    """The bound port number (the 0.4 name)."""
    max_backlog: int = 128
    """Listen backlog."""
    socket_timeout: float = 1.0
    """Longest wait of the loop between checks for signals and stop requests."""
    connection_timeout: float = 30.0
    """A connection idle for this many seconds is closed."""
    max_connections: int = 1024
    """Connections served at once; more are refused."""
    max_message_size: int = DEFAULT_MAX_MESSAGE
    """Largest message or reply in bytes (legacy replies are not limited)."""
    logger: CustomLogger
    """The daemon's logger (the application logger)."""
    message: str = ""
    """The last message received."""
    reply: str = ""
    """Reply of the current command; handlers assign or append to it."""
    pid_file_name: str = "/tmp/socket_comm.pid"  # noqa: S108 - the 0.4 default
    """PID lock file."""
    lock: zc.lockfile.LockFile | None = None
    """The PID lock, while held."""
    namespace: argparse.Namespace
    """Parsed arguments of the current command."""
    parser: ArgumentParser
    """The command parser."""
    sp: argparse._SubParsersAction[ArgumentParser]
    """Subparsers: one per command."""
    delimiter_left: str = "{"
    """Opens a group of words."""
    delimiter_right: str = "}"
    """Closes a group of words."""
    secret: bytes | None = None
    """Shared secret, when authentication is on."""
    tls_cert: str | None = None
    """PEM certificate chain; TLS is on when set."""
    tls_key: str | None = None
    """PEM private key (None: in ``tls_cert``)."""
    tls_ca: str | None = None
    """CA bundle that client certificates must be signed by (mutual TLS)."""

    def __init__(
        self,
        config_file: str | None = None,
        pid_file_name: str | None = None,
        host: str | None = None,
        port: int | None = None,
        *,
        secret: str | bytes | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_ca: str | None = None,
    ) -> None:
        self.logger = getLogger()
        self.namespace = argparse.Namespace()
        self._selector: selectors.BaseSelector | None = None
        self._connections: dict[int, _Connection] = {}
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stopping = threading.Event()
        self._verifier: Verifier | None = None
        self._tls: ssl.SSLContext | None = None
        self.served = 0
        """Commands answered since the start."""
        if config_file is not None:
            self.config(config_file)
        if host is not None:
            self.host = host
        if port is not None:
            self.port = int(port)
        if pid_file_name is not None:
            self.pid_file_name = pid_file_name
        if secret is not None:
            self.secret = secret.encode() if isinstance(secret, str) else secret
        for option, value in (("tls_cert", tls_cert), ("tls_key", tls_key), ("tls_ca", tls_ca)):
            if value is not None:
                setattr(self, option, value)
        if self.secret:
            self._verifier = Verifier(self.secret)
        self.create_parser()
        self.daemonize()

    # -- setup -------------------------------------------------------------------------

    def config(self, filename: str) -> None:
        """Read ``[Overall]`` from ``filename``: host, port and the optional limits.

        Parameters
        ----------
        filename : str
            The INI file (``~`` expanded). A missing file or section keeps the defaults.

        Raises
        ------
        ValueError
            A number option holds no number.
        """
        parser = configparser.ConfigParser()
        parser.read(Path(filename).expanduser(), encoding="utf-8")
        section = "Overall"
        self.host = parser.get(section, "host", fallback=self.host)
        self.port = parser.getint(section, "port", fallback=self.port)
        self.connection_timeout = parser.getfloat(
            section, "connection_timeout", fallback=self.connection_timeout
        )
        self.max_connections = parser.getint(
            section, "max_connections", fallback=self.max_connections
        )
        self.max_message_size = parser.getint(
            section, "max_message_size", fallback=self.max_message_size
        )
        for option in ("tls_cert", "tls_key", "tls_ca"):
            value = parser.get(section, option, fallback=None)
            if value:
                setattr(self, option, str(Path(value).expanduser()))
        secret_file = parser.get(section, "secret_file", fallback=None)
        if secret_file:
            self.secret = Path(secret_file).expanduser().read_bytes().strip()
        self.logger.debug("Configuration file loaded: %s", filename)

    def create_parser(self) -> None:
        """Build :attr:`parser` and :attr:`sp` with the built-in ``quit`` command.

        Subclasses override it (calling this first) or extend :attr:`sp` after
        ``super().__init__()``.
        """
        self.parser = ArgumentParser(
            prog="daemon",
            description="socket_comm daemon example, the user should override this",
            epilog=f"Check out the package documentation for more information:\n{DOCS_URL}",
        )
        self.sp = self.parser.add_subparsers(title="command", description="Daemon actions")
        quit_parser = self.sp.add_parser(name="quit", description="stops the daemon")
        quit_parser.set_defaults(func=self.quit, which="quit")
        add_declared_commands(self, self.sp)

    def daemonize(self) -> None:
        """Take the PID lock (``zc.lockfile``), writing ``<pid>;<hostname>`` into the file.

        Raises
        ------
        zc.lockfile.LockError
            Another process (or another daemon in this one) holds the lock.
        """
        try:
            self.lock = zc.lockfile.LockFile(
                self.pid_file_name, content_template="{pid};{hostname}"
            )
        except zc.lockfile.LockError:
            self.logger.error("Could not lock %s: is another daemon running?", self.pid_file_name)
            raise
        self.logger.debug("PID lock %s taken", self.pid_file_name)

    # -- commands ----------------------------------------------------------------------

    def quit(self) -> None:
        """Handle ``quit``: log, reply ``Goodbye!``; the loop then stops."""
        self.logger.info("Cleaning up...")
        self.reply = "Goodbye!"

    def stop(self) -> None:
        """Ask the loop to stop after the current command (safe from any thread)."""
        self.quit_flag = True
        self._stopping.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def signal_handler(self, signum: int, frame: FrameType | None) -> None:
        """Handle SIGINT and SIGTERM: call :meth:`quit` and stop the loop."""
        self.logger.warning(
            "Signal %s received, terminating gracefully...", signal.Signals(signum).name
        )
        try:
            self.quit()
        finally:
            self.stop()

    def execute(self, message: str) -> str:
        """Parse and run one command; return the reply text.

        This is what every received message goes through; tests and embedding apps may
        call it directly.

        Parameters
        ----------
        message : str
            The control message.

        Returns
        -------
        str
            The reply.
        """
        self.message = message.rstrip()
        self.reply = ""
        try:
            if not self.message:
                raise MessageError("empty message")
            self.namespace = self.parser.parse_args(
                split_message(self.message, self.delimiter_left, self.delimiter_right)
            )
            func = getattr(self.namespace, "func", None)
            if func is None:
                raise MessageError("no command given")
            result = func()
            if isinstance(result, str) and not self.reply:
                self.reply = result
            if getattr(self.namespace, "which", None) == "quit":
                self.quit_flag = True
        except MessageError as error:
            self.logger.warning(
                "Invalid message %r: %s", _excerpt(self.message), _excerpt(str(error))
            )
            self.reply = f"Error! {error}\n{self.parser.full_help()}"
        except AttributeError as error:
            self.logger.warning(
                "%s (%s: %s)", WHICH_MISSING, type(error).__name__, error, exc_info=True
            )
            self.reply = f"{WHICH_MISSING}\n{type(error).__name__}: {error}"
        except BaseException as error:
            self.logger.exception("Command %r failed", _excerpt(self.message))
            self.reply = f"{UNKNOWN_EXCEPTION}\n{type(error).__name__}: {error}"
        self.served += 1
        return self.reply

    # -- the loop ----------------------------------------------------------------------

    def start_daemon(self) -> None:
        """Bind, serve until ``quit`` (or SIGINT/SIGTERM, or :meth:`stop`), then clean up.

        Signal handlers are installed only when called from the main thread. The socket
        and the PID lock are released on every way out.

        Raises
        ------
        OSError
            The address could not be bound.
        """
        previous: dict[int, Any] = {}
        try:
            if threading.current_thread() is threading.main_thread():
                for signum in (signal.SIGINT, signal.SIGTERM):
                    previous[signum] = signal.signal(signum, self.signal_handler)
            self._bind()
            self.logger.info("Daemon listening on %s:%s", self.host, self.address)
            self._serve()
        except OSError as error:
            self.logger.error("Socket error: %s", error)
            raise
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            self.close()
        self.logger.info("Daemon stopped")

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_cert, self.tls_key)
        if self.tls_ca:
            context.load_verify_locations(self.tls_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def _bind(self) -> None:
        self._tls = self._tls_context()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(self.max_backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.address = sock.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ, None)
        # Written to by stop() so that the loop wakes at once, from any thread.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)

    def _serve(self) -> None:
        selector = self._selector
        assert selector is not None
        next_sweep = time.monotonic() + 1.0
        while not self.quit_flag:
            for key, events in selector.select(self.socket_timeout):
                fileobj = key.fileobj
                if fileobj is self.sock:
                    self._accept()
                elif fileobj is self._wake_r:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(64)
                else:
                    conn = key.data
                    if events & selectors.EVENT_READ:
                        self._on_readable(conn)
                    if events & selectors.EVENT_WRITE and conn.sock.fileno() != -1:
                        if conn.handshaking:
                            self._handshake(conn)
                        else:
                            self._flush(conn)
                if self._quit_requested():
                    break
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + 1.0
        # Let the reply to `quit` (or whatever is pending) go out before closing.
        for conn in list(self._connections.values()):
            if conn.outbuf:
                with contextlib.suppress(OSError):
                    conn.sock.setblocking(True)
                    conn.sock.settimeout(1.0)
                    conn.sock.sendall(conn.outbuf)
            self._drop(conn)

    def _quit_requested(self) -> bool:
        # A method, not the attribute: handlers and signals change it behind the loop's back.
        return self.quit_flag

    def _accept(self) -> None:
        assert self.sock is not None and self._selector is not None
        while True:
            try:
                sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self.logger.warning("accept failed: %s", error)
                return
            if len(self._connections) >= self.max_connections:
                self.logger.warning("Too many connections (%d): refusing one", self.max_connections)
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            conn = _Connection(sock, handshaking=self._tls is not None)
            self._connections[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _handshake(self, conn: _Connection) -> bool:
        """Advance a TLS handshake; True once it is complete."""
        assert self._selector is not None
        try:
            conn.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
            return False
        except ssl.SSLWantWriteError:
            self._selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
            return False
        except (ssl.SSLError, OSError) as error:
            self.logger.warning("TLS handshake failed: %s", error)
            self._drop(conn)
            return False
        conn.handshaking = False
        self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
        return True

    def _on_readable(self, conn: _Connection) -> None:
        if conn.handshaking and not self._handshake(conn):
            return
        try:
            data = conn.sock.recv(_READ_SIZE)
            if isinstance(conn.sock, ssl.SSLSocket):
                # Decrypted bytes already buffered never wake the selector: take them now.
                while conn.sock.pending():
                    data += conn.sock.recv(conn.sock.pending())
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError:
            self._drop(conn)
            return
        if not data:
            self._drop(conn)
            return
        conn.last_active = time.monotonic()
        if conn.closing:
            return
        conn.inbuf += data
        if conn.framed is None:
            head = bytes(conn.inbuf[: len(MAGIC)])
            if MAGIC.startswith(head) and len(head) < len(MAGIC):
                return  # maybe the start of a header: wait for more (or the idle sweep)
            conn.framed = head == MAGIC
            if not conn.framed:
                # An old client: one message, no terminator, answered at once.
                self._answer_legacy(conn)
                return
        self._process_frames(conn)

    def _answer_legacy(self, conn: _Connection) -> None:
        raw = bytes(conn.inbuf)
        conn.inbuf.clear()
        if self._verifier is not None:
            reply = AUTH_REQUIRED
            self.logger.warning("Unauthenticated (legacy) message refused")
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                reply = "Error! The message is not valid UTF-8"
            else:
                reply = self.execute(text)
        self._send(conn, reply.encode("utf-8", "replace"), close_after=True)

    def _process_frames(self, conn: _Connection) -> None:
        while not conn.closing and not self.quit_flag:
            newline = conn.inbuf.find(b"\n", 0, MAX_HEADER)
            if newline < 0:
                if len(conn.inbuf) >= MAX_HEADER:
                    self._send(conn, frame(b"Error! Malformed frame header"), close_after=True)
                return
            try:
                header = parse_header(bytes(conn.inbuf[:newline]), self.max_message_size)
            except FrameError as error:
                self._send(conn, frame(f"Error! {error}".encode()), close_after=True)
                return
            end = newline + 1 + header.length
            if len(conn.inbuf) < end:
                return
            payload = bytes(conn.inbuf[newline + 1 : end])
            del conn.inbuf[:end]
            self._send(conn, frame(self._answer_framed(payload, header.auth).encode("utf-8")))

    def _answer_framed(self, payload: bytes, auth: str | None) -> str:
        if self._verifier is not None:
            problem = self._verifier.check(auth, payload)
            if problem is not None:
                self.logger.warning("Message refused: %s", problem)
                return f"{AUTH_REQUIRED} ({problem})"
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return "Error! The message is not valid UTF-8"
        return self.execute(text)

    def _send(self, conn: _Connection, data: bytes, close_after: bool = False) -> None:
        conn.outbuf += data
        conn.closing = conn.closing or close_after
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        assert self._selector is not None
        try:
            while conn.outbuf:
                sent = conn.sock.send(conn.outbuf)
                del conn.outbuf[:sent]
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            self._selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
            return
        except OSError:
            self._drop(conn)
            return
        if conn.closing:
            self._drop(conn)
        else:
            self._selector.modify(conn.sock, selectors.EVENT_READ, conn)

    def _sweep(self, now: float) -> None:
        for conn in list(self._connections.values()):
            if now - conn.last_active < self.connection_timeout:
                continue
            if conn.framed is None and conn.inbuf:
                self._answer_legacy(conn)  # a short legacy message that looked like a header
            else:
                self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        fd = conn.sock.fileno()
        if fd != -1 and self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)
        self._connections.pop(fd, None)
        conn.sock.close()

    # -- teardown ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the socket and every connection, and release the PID lock (idempotent)."""
        for conn in list(self._connections.values()):
            self._drop(conn)
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.lock is not None:
            try:
                self.lock.close()
            except OSError as error:
                self.logger.error("Something went wrong releasing the PID lock: %s", error)
            self.lock = None
        for end in (self._wake_r, self._wake_w):
            if end is not None:
                end.close()
        self._wake_r = self._wake_w = None
