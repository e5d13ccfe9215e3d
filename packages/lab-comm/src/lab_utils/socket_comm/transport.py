"""Moving bytes for a daemon: the listening socket, one event loop, connections, TLS.

One thread serves every connection (an idle or slow client never blocks the others) and
hands what it reads to a :class:`~lab_utils.socket_comm.protocol.Protocol`. The loop is
built for the one-shot exchange of old clients: a connection whose message has already
arrived when it is accepted is answered and closed without ever entering the poller, and
plain sockets keep their blocking mode and are read and written with ``MSG_DONTWAIT``, so
a request costs the same system calls as in a blocking accept loop. While no connection is
open, the loop does not poll at all: it sleeps in ``accept()`` itself, as a blocking accept
loop does, and goes back to polling only for a connection that would make it wait (a slow
client, a TLS handshake, a persistent connection).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable

from lab_utils.socket_comm.protocol import Exchange, Protocol

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:  # ssl is imported only by a daemon that speaks TLS (see tls.py)
    import ssl

_READ_SIZE = 65536
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
# A one-shot reply is sent "with more to come" and the close that follows sends it: the
# reply and the end of the connection travel in one segment, not two (Linux).
_LAST = _DONTWAIT | getattr(socket, "MSG_MORE", 0)
_IN = select.POLLIN
_OUT = select.POLLOUT
_WANT: tuple[type[OSError], ...] = (BlockingIOError, InterruptedError)
_ACCEPTS_PER_WAKE = 64  # bounded, so that a flood of connections cannot starve the others
# The C socket type, without the Python layer of socket.socket: accepted plain connections
# need only recv, send and close, and the layer (enum conversions of family and type, the
# makefile reference count) costs more per connection than the rest of the transport.
_RawSocket = socket.SocketType
# A poll that returns within this many seconds did not sleep: work was already waiting.
_INSTANT = 0.000005
_INSTANT_POLLS = 3  # polls in a row that found a connection waiting: they queue up
# Where a stop connects to wake a blocking accept() of a socket bound to every address.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104


class _Poller:
    """``epoll`` where there is one, ``poll`` elsewhere; timeouts in seconds."""

    def __init__(self) -> None:
        if hasattr(select, "epoll"):
            epoll = select.epoll()
            self.close: Callable[[], None] = epoll.close
            self.wait: Callable[[float], list[tuple[int, int]]] = epoll.poll
            self.register: Callable[[int, int], None] = epoll.register
            self.modify: Callable[[int, int], None] = epoll.modify
            self.unregister: Callable[[int], None] = epoll.unregister
        else:  # pragma: no cover - not Linux
            poll = select.poll()
            self.close = lambda: None
            self.wait = lambda seconds: poll.poll(seconds * 1000)
            self.register = poll.register
            self.modify = poll.modify
            self.unregister = poll.unregister


class Connection:
    """One client connection: its socket, what waits to be sent, its protocol state."""

    __slots__ = (
        "closing",
        "events",
        "exchange",
        "fd",
        "flags",
        "handshaking",
        "last_active",
        "nodelay",
        "outbuf",
        "sock",
    )

    def __init__(self, sock: socket.socket, flags: int, handshaking: bool = False) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.flags = flags
        self.handshaking = handshaking
        self.exchange = Exchange()
        self.outbuf = bytearray()
        self.closing = False
        self.events = 0  # what the poller watches for; 0: not registered
        self.nodelay = False
        self.last_active = time.monotonic()


class Transport:
    """The listening socket and the event loop of a daemon.

    Parameters
    ----------
    protocol : Protocol
        Turns received bytes into replies.
    logger : logging.Logger
        Where connection problems are reported.
    connection_timeout : float
        A connection idle for this many seconds is closed.
    max_connections : int
        Connections served at once; more are refused.
    poll_interval : float
        Longest wait between checks of the stop condition.
    """

    def __init__(
        self,
        protocol: Protocol,
        logger: logging.Logger,
        connection_timeout: float,
        max_connections: int,
        poll_interval: float,
    ) -> None:
        self.protocol = protocol
        self.logger = logger
        self.connection_timeout = connection_timeout
        self.max_connections = max_connections
        self.poll_interval = poll_interval
        self.sock: socket.socket | None = None
        self._tls: ssl.SSLContext | None = None
        # What "try again later" raises: with TLS, ssl's own kinds too (see bind).
        self._wants = _WANT
        self._poller: _Poller | None = None
        self._connections: dict[int, Connection] = {}
        self._stopped: Callable[[], bool] = lambda: False
        # Plain connections are accepted as descriptors and wrapped in the C socket type
        # with the (family, type, proto) of the listening socket (see _RawSocket); TLS
        # needs a socket.socket to wrap, and gets one from accept().
        self._accept_fd: Callable[[], tuple[int, object]] | None = None
        self._kind: tuple[int, int, int] = (0, 0, 0)
        # Written to by wake() so that the loop notices a stop at once, from any thread.
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        # A blocking accept() wakes for a connection only: wake() connects to the listening
        # address, and keeps the socket open until the end (closing a connection still in
        # its handshake could leave nothing to accept).
        self._wake_address: tuple[object, ...] | None = None
        self._wakers: list[socket.socket] = []
        # Whether the loop may sleep in accept() while no connection is open (see _idle).
        self._idle_accept = False

    # -- setup -------------------------------------------------------------------------

    def bind(
        self, host: str, port: int, backlog: int, tls: ssl.SSLContext | None = None
    ) -> socket.socket:
        """Bind and listen on ``host:port``; return the listening socket.

        Raises
        ------
        OSError
            The address cannot be bound; the message names it.
        """
        self._tls = tls
        if tls is not None:
            import ssl  # here, not at the top: see tls.py

            self._wants = (*_WANT, ssl.SSLWantReadError, ssl.SSLWantWriteError)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
            if error.errno == errno.EADDRINUSE:
                text = f"address {where} is already in use (is another daemon listening there?)"
            else:
                text = f"cannot listen on {where}: {error.strerror or error}"
            raise OSError(error.errno, text) from error
        self.sock = sock
        self._kind = (int(sock.family), int(sock.type), int(sock.proto))
        address = sock.getsockname()
        self._wake_address = (_LOOPBACK.get(address[0], address[0]), *address[1:])
        if sys.platform.startswith("linux"):
            # Linux bounds a blocking accept() by the receive timeout, so the idle loop
            # still checks its stop condition every poll_interval (a 0.4 daemon may set
            # quit_flag from another thread without calling stop()); elsewhere the loop
            # always polls. The accepted sockets inherit the timeout; they never block
            # on a receive (MSG_DONTWAIT, or non-blocking mode), so it changes nothing
            # for them.
            seconds = self.poll_interval
            try:
                if seconds is not None and seconds > 0:
                    whole = int(seconds)
                    usec = max(int((seconds - whole) * 1_000_000), 0 if whole else 1)
                    timeout = struct.pack("@ll", whole, usec)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
                # None waits for a stop as the poller would; zero or less keeps polling.
                self._idle_accept = seconds is None or seconds > 0
            except OSError as error:
                self.logger.warning("no accept timeout (%s): the loop always polls", error)
        self._accept_fd = getattr(sock, "_accept", None) if tls is None else None
        self._poller = _Poller()
        self._poller.register(sock.fileno(), _IN)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._poller.register(self._wake_r.fileno(), _IN)
        return sock

    def wake(self) -> None:
        """Make the loop check its stop condition now (safe from any thread and signal handler).

        Used to stop: a loop asleep in ``accept()`` is woken by a connection to the
        listening address, which it then closes unanswered.
        """
        # No lock (this runs in signal handlers): read each attribute once, as close()
        # may run in the loop's thread meanwhile.
        wake_w, address, listener = self._wake_w, self._wake_address, self.sock
        if wake_w is not None:
            with contextlib.suppress(OSError):
                wake_w.send(b"\0")
        if not self._idle_accept or address is None or listener is None:
            return
        try:
            waker = socket.socket(listener.family, socket.SOCK_STREAM)
        except OSError:
            return  # out of descriptors: the loop still sees the stop within poll_interval
        waker.setblocking(False)
        # The kernel completes a loopback connection by itself; no wait for it here,
        # which would not do in a signal handler.
        with contextlib.suppress(OSError):
            waker.connect_ex(address)
        self._wakers.append(waker)
        if self._wake_address is None:  # closed meanwhile, maybe before the append
            waker.close()

    # -- the loop ----------------------------------------------------------------------

    def serve(self, stopped: Callable[[], bool]) -> None:
        """Serve connections until ``stopped()``; then send what is pending and close them."""
        poller, listener, wake = self._poller, self.sock, self._wake_r
        assert poller is not None and listener is not None and wake is not None
        listen_fd, wake_fd = listener.fileno(), wake.fileno()
        connections = self._connections
        self._stopped = stopped
        monotonic = time.monotonic
        next_sweep = monotonic() + 1.0
        # Accept until the queue is empty (up to a bound) only while connections queue
        # up; else one per wake-up: a lone client's next connection is not there yet
        # when its reply has gone, and trying costs a failed accept() per request.
        batch, instant = True, 0
        while not stopped():
            if not connections and self._idle_accept:
                self._idle(listener)
                if stopped():
                    break
                if not connections:
                    continue
                batch, instant = False, 0
            before = monotonic()
            events = poller.wait(self.poll_interval)
            now = monotonic()
            for fd, mask in events:
                conn = None
                try:
                    if fd == listen_fd:
                        if batch:
                            # The queue held a single connection: back to one at a time.
                            batch = self._accept(listener, _ACCEPTS_PER_WAKE) > 1
                            instant = 0
                        else:
                            self._accept(listener, 1)
                            instant = instant + 1 if now - before < _INSTANT else 0
                            batch = instant >= _INSTANT_POLLS
                    elif fd == wake_fd:
                        with contextlib.suppress(OSError):
                            wake.recv(64)
                    else:
                        conn = connections.get(fd)
                        if conn is None:
                            continue
                        if mask & ~_OUT:  # readable, or an error or hang-up recv reports
                            self._readable(conn)
                        if mask & _OUT and conn.events:
                            if conn.handshaking:
                                self._handshake(conn)
                            else:
                                self._flush(conn)
                except Exception:
                    # A bug must cost one connection, never the daemon.
                    self.logger.exception("Unexpected error serving a connection")
                    if conn is not None:
                        self._drop(conn)
                if stopped():
                    break
            # The time of the wake-up is recent enough for a once-a-second sweep, and
            # connections served since then are younger than it (never swept early).
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + 1.0
        # Let the reply to `quit` (or whatever is pending) go out before closing.
        for conn in list(connections.values()):
            if conn.outbuf:
                with contextlib.suppress(OSError):
                    conn.sock.settimeout(1.0)
                    conn.sock.sendall(conn.outbuf)
            self._drop(conn)

    def _idle(self, listener: socket.socket) -> None:
        """Sleep in a blocking ``accept()`` and serve, until a connection needs the poller.

        With no connection open there is nothing else to watch: one system call both
        waits and accepts, where polling would cost a wake-up and then the accept. A
        connection that cannot be answered at once (its bytes not there yet, a TLS
        handshake, a framed client that stays) is left in :attr:`_connections`, and the
        loop goes back to polling. A stop wakes the accept with a connection of its own
        (:meth:`wake`); a signal handler that returns lets the accept go on (PEP 475).
        """
        stopped = self._stopped
        connections = self._connections
        take, serve_new = self._take, self._serve_new
        listener.setblocking(True)
        try:
            while not stopped():
                try:
                    sock = take(listener)
                except self._wants:
                    continue  # the receive timeout: look at the stop condition again
                except OSError as error:
                    self.logger.warning("accept failed: %s", error)
                    return  # the poller waits out what is wrong (too many open files...)
                if stopped():  # the stop's own connection, or one that came with it
                    sock.close()
                    return
                serve_new(sock)
                if connections:
                    return
        finally:
            listener.setblocking(False)

    def _take(self, listener: socket.socket) -> socket.socket:
        """Accept one connection (OSError, BlockingIOError among them, when none)."""
        accept_fd = self._accept_fd
        if accept_fd is None:
            return listener.accept()[0]
        fd, _ = accept_fd()
        try:
            # Duck-typed: the C type has every method a connection uses.
            return _RawSocket(*self._kind, fd)  # type: ignore[return-value]
        except BaseException:
            os.close(fd)
            raise

    def _accept(self, listener: socket.socket, count: int) -> int:
        """Accept and serve up to ``count`` connections; return how many were accepted."""
        stopped = self._stopped
        connections = self._connections
        take, serve_new = self._take, self._serve_new
        for accepted in range(count):
            if stopped():  # after `quit`, queued connections get no command run
                return accepted
            try:
                sock = take(listener)
            except self._wants:
                return accepted
            except OSError as error:
                self.logger.warning("accept failed: %s", error)
                return accepted
            if len(connections) >= self.max_connections:
                self.logger.warning("Too many connections (%d): refusing one", self.max_connections)
                sock.close()
                continue
            serve_new(sock)
        return count

    def _serve_new(self, sock: socket.socket) -> None:
        """Serve a connection just accepted; a bug costs this connection, never the daemon."""
        try:
            self._answer_new(sock)
        except Exception:
            self.logger.exception("Unexpected error serving a new connection")
            stale = self._connections.get(sock.fileno())
            if stale is not None:
                self._drop(stale)
            else:
                sock.close()

    def _answer_new(self, sock: socket.socket) -> None:
        if self._tls is not None:
            sock.setblocking(False)
            try:
                tls_sock = self._tls.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
            except OSError as error:  # ssl.SSLError included
                self.logger.warning("TLS setup failed: %s", error)
                sock.close()
                return
            conn = Connection(tls_sock, 0, handshaking=True)
            self._want(conn, _IN)
            return
        if not _DONTWAIT or sock.gettimeout() is not None:
            # No per-call flag here, or a default timeout would make each call wait.
            sock.setblocking(False)
            self._readable(Connection(sock, 0))
            return
        # Most one-shot clients have sent their message by now: answer it without
        # polling and without building any connection state.
        try:
            data = sock.recv(_READ_SIZE, _DONTWAIT)
        except self._wants:
            self._want(Connection(sock, _DONTWAIT), _IN)
            return
        except OSError:
            sock.close()
            return
        if not data:
            sock.close()
            return
        reply = self.protocol.one_shot(data)
        if reply is None:
            self._received(Connection(sock, _DONTWAIT), data)
            return
        try:
            sent = sock.send(reply, _LAST)
        except self._wants:
            sent = 0
        except OSError:
            sock.close()
            return
        if sent == len(reply):
            sock.close()
        else:  # a long reply: the rest goes out as the client reads
            conn = Connection(sock, _DONTWAIT)
            conn.exchange.framed = False
            self._send(conn, reply[sent:], True)

    def _want(self, conn: Connection, events: int) -> None:
        if conn.events == events:
            return
        assert self._poller is not None
        if conn.events:
            self._poller.modify(conn.fd, events)
        else:
            self._poller.register(conn.fd, events)
            self._connections[conn.fd] = conn
        conn.events = events

    def _handshake(self, conn: Connection) -> bool:
        """Advance a TLS handshake; True once it is complete."""
        import ssl  # a TLS daemon has imported it already (see tls.py)

        try:
            conn.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self._want(conn, _IN)
            return False
        except ssl.SSLWantWriteError:
            self._want(conn, _IN | _OUT)
            return False
        except (ssl.SSLError, OSError) as error:
            self.logger.warning("TLS handshake failed: %s", error)
            self._drop(conn)
            return False
        conn.handshaking = False
        self._want(conn, _IN)
        return True

    def _readable(self, conn: Connection) -> None:
        if conn.handshaking and not self._handshake(conn):
            return
        sock = conn.sock
        try:
            data = sock.recv(_READ_SIZE, conn.flags)
            if conn.flags == 0 and self._tls is not None:  # a TLS daemon speaks only TLS
                # Decrypted bytes already buffered never wake the poller: take them now.
                pending = sock.pending  # type: ignore[attr-defined]  # an ssl.SSLSocket
                while pending():
                    data += sock.recv(pending())
        except self._wants:
            self._want(conn, conn.events or _IN)
            return
        except OSError:
            self._drop(conn)
            return
        if not data:
            self._drop(conn)
            return
        if not conn.closing:
            conn.last_active = time.monotonic()
            self._received(conn, data)

    def _received(self, conn: Connection, data: bytes) -> None:
        out, close = self.protocol.received(conn.exchange, data)
        if conn.exchange.framed and not conn.nodelay:
            # Many small replies on one connection: do not let Nagle hold them back.
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.nodelay = True
        if out or close:
            self._send(conn, out, close)
        else:
            self._want(conn, conn.events or _IN)

    def _send(self, conn: Connection, data: bytes, close: bool) -> None:
        conn.closing = conn.closing or close
        if conn.outbuf:
            conn.outbuf += data
        elif data:
            try:
                sent = conn.sock.send(data, conn.flags)
            except self._wants:
                sent = 0
            except OSError:
                self._drop(conn)
                return
            if sent < len(data):
                conn.outbuf += memoryview(data)[sent:]
        if conn.outbuf:
            self._want(conn, _IN | _OUT)
        elif conn.closing:
            self._drop(conn)
        else:
            self._want(conn, _IN)

    def _flush(self, conn: Connection) -> None:
        try:
            while conn.outbuf:
                sent = conn.sock.send(conn.outbuf, conn.flags)
                del conn.outbuf[:sent]
        except self._wants:
            self._want(conn, _IN | _OUT)
            return
        except OSError:
            self._drop(conn)
            return
        if conn.closing:
            self._drop(conn)
        else:
            self._want(conn, _IN)

    def _sweep(self, now: float) -> None:
        for conn in list(self._connections.values()):
            if now - conn.last_active < self.connection_timeout:
                continue
            out = None if conn.closing else self.protocol.expired(conn.exchange)
            if out is None:
                self._drop(conn)
            else:
                self._send(conn, out, True)

    def _drop(self, conn: Connection) -> None:
        if conn.events:
            conn.events = 0
            self._connections.pop(conn.fd, None)
            if self._poller is not None:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._poller.unregister(conn.fd)
        conn.sock.close()

    # -- teardown ----------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection, the listening socket and the poller (idempotent)."""
        for conn in list(self._connections.values()):
            self._drop(conn)
        if self._poller is not None:
            self._poller.close()
            self._poller = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        # First, so that a wake() from another thread closes its own socket from now on.
        self._wake_address = None
        for end in (self._wake_r, self._wake_w, *self._wakers):
            if end is not None:
                end.close()
        self._wake_r = self._wake_w = None
        self._wakers.clear()
        self._idle_accept = False
        self._accept_fd = None
