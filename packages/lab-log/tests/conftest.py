"""Real local peers for the network handlers: SMTP with TLS, an HTTP endpoint, TCP listeners."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from lab_utils.custom_logging import AlarmListener
from lab_utils.custom_logging import config as logging_config


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    """Each test starts and ends without our handlers on the root logger."""
    root = logging.getLogger()
    level = root.level
    yield
    logging_config.shutdown_logging()
    root.setLevel(level)
    # Levels set on named loggers by one test must not filter another test's records.
    for existing in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(existing, logging.Logger):
            existing.setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A test certificate authority."""
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test CA's certificate as a PEM file (what ``ca_file`` options point to)."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def free_port() -> int:
    """Return a TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Inbox:
    """Messages an SMTP server received."""

    messages: list[Envelope] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    refused: set[str] = field(default_factory=set)
    """Recipients the server answers 550 (the others are accepted)."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        self.arrived.set()
        return "250 OK"

    def bodies(self) -> list[str]:
        """The message texts."""
        return [bytes(m.content or b"").decode("utf-8", "replace") for m in self.messages]


class _Authenticator:
    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"daq",
            b"s3cret",
        )
        return AuthResult(success=ok)


@dataclass
class SmtpServer:
    """A running aiosmtpd server."""

    host: str
    port: int
    inbox: Inbox


def _smtp(ca: trustme.CA, implicit_tls: bool) -> Iterator[SmtpServer]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    inbox = Inbox()
    port = free_port()
    kwargs: dict[str, Any] = {"authenticator": _Authenticator(), "auth_require_tls": True}
    if implicit_tls:
        # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; here all of it is TLS.
        kwargs["auth_require_tls"] = False
        controller = Controller(
            inbox, hostname="127.0.0.1", port=port, ssl_context=context, **kwargs
        )
    else:
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            tls_context=context,
            require_starttls=True,
            **kwargs,
        )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, inbox)
    finally:
        controller.stop()


@pytest.fixture
def smtp_starttls(ca: trustme.CA) -> Iterator[SmtpServer]:
    """SMTP server that requires STARTTLS and a login (daq / s3cret), certificate by the test CA."""
    yield from _smtp(ca, implicit_tls=False)


@pytest.fixture
def smtp_ssl(ca: trustme.CA) -> Iterator[SmtpServer]:
    """SMTP server speaking TLS from the first byte."""
    yield from _smtp(ca, implicit_tls=True)


@pytest.fixture
def credentials_file(tmp_path: Path) -> Path:
    """The two-line credentials file for the test SMTP servers."""
    path = tmp_path / "smtpcredentials"
    path.write_text("daq\ns3cret\n")
    return path


@dataclass
class HttpEndpoint:
    """A local HTTP server recording JSON posts and answering with a set status."""

    url: str
    posts: list[dict[str, Any]]
    headers: list[dict[str, str]]
    status: list[int]
    arrived: threading.Event


@pytest.fixture
def slack_endpoint() -> Iterator[HttpEndpoint]:
    """Stand in for Slack: webhooks answer ``ok``, ``chat.postMessage`` ``{"ok": true}``."""
    posts: list[dict[str, Any]] = []
    headers: list[dict[str, str]] = []
    status = [200]
    arrived = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            posts.append(json.loads(self.rfile.read(length)))
            headers.append(dict(self.headers))
            body = b"ok" if self.path.startswith("/hook") else b'{"ok": true}'
            if status[0] != 200:
                body = b"server error"
            self.send_response(status[0])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            arrived.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpEndpoint(
            f"http://127.0.0.1:{server.server_address[1]}", posts, headers, status, arrived
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class OneShotListener:
    """A TCP server that, like a 0.4 socket_comm server, reads once per connection and replies."""

    port: int
    messages: list[str]
    arrived: threading.Condition


@pytest.fixture
def one_shot_listener() -> Iterator[OneShotListener]:
    """Reads one message per connection (one recv, as the old server), answers, closes."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)
    messages: list[str] = []
    arrived = threading.Condition()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = conn.recv(65536)
                with arrived:
                    messages.append(data.decode())
                    arrived.notify_all()
                conn.sendall(b"OK")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield OneShotListener(sock.getsockname()[1], messages, arrived)
    finally:
        stop.set()
        thread.join()
        sock.close()


@contextmanager
def _accepting(on_connection: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback TCP server handing each connection to ``on_connection``; yields its port."""
    sock = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    sock.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            on_connection(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        sock.close()


@pytest.fixture
def hanging_server() -> Iterator[tuple[int, threading.Event]]:
    """Accepts connections and never says a word; the event is set once one connected."""
    connected = threading.Event()
    held: list[socket.socket] = []

    def hold(conn: socket.socket) -> None:
        held.append(conn)
        connected.set()

    try:
        with _accepting(hold) as port:
            yield port, connected
    finally:
        for conn in held:
            conn.close()


Answer = Callable[[socket.socket, threading.Event], None]


@pytest.fixture
def answering_server() -> Iterator[Callable[[Answer], AbstractContextManager[int]]]:
    """``with answering_server(answer) as port``: ``answer(conn, stop)`` runs per connection.

    Each connection gets its own thread and is closed when ``answer`` returns; ``stop``
    is set when the block ends, and the threads are waited for.
    """
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def start(answer: Answer) -> AbstractContextManager[int]:
        def run(conn: socket.socket) -> None:
            with conn:
                answer(conn, stop)

        def spawn(conn: socket.socket) -> None:
            worker = threading.Thread(target=run, args=(conn,), daemon=True)
            workers.append(worker)
            worker.start()

        return _accepting(spawn)

    try:
        yield start
    finally:
        stop.set()
        for worker in workers:
            worker.join(20)


@dataclass
class RunningAlarmListener:
    """An :class:`AlarmListener` serving in a thread, and the records it received."""

    port: int
    received: list[logging.LogRecord]

    def messages(self) -> list[str]:
        """The texts received so far."""
        return [record.getMessage() for record in self.received]


@pytest.fixture
def alarm_listener() -> Iterator[RunningAlarmListener]:
    """Our alarm receiver on a free loopback port, keeping every record it gets."""
    received: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            received.append(record)

    server = AlarmListener("127.0.0.1", 0, [Keep()])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield RunningAlarmListener(server.port, received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def ini(tmp_path: Path) -> Any:
    """Write a logging INI file from its text and return its path."""

    def write(text: str, name: str = "logging.ini") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


@pytest.fixture
def poll() -> Callable[..., bool]:
    """``poll(condition, timeout=20)``: wait until ``condition()`` holds; its last value."""

    def wait(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.02)
        return condition()

    return wait


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on."""
    return free_port()
