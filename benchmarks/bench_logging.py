"""Caller cost of a logging call: configure_logging's handlers next to the stdlib's own.

Every run writes to a folder of its own and is checked before its figure counts: each
record must be in the peer's file and in ours (after ``shutdown_logging`` drained the
queue), and with mail and Slack on a server that never answers, each of the two sinks
must account for every record it was given (delivered, dropped and said so, held back
for a rate-limit digest, or still being sent when it closed and said so). Closing waits
once, the sinks' own ``timeout`` (2 s here), for both sinks side by side.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import threading
from pathlib import Path

from report import Comparison, best_of, timed

from lab_utils.custom_logging import configure_logging, shutdown_logging
from lab_utils.custom_logging.delivery import Dispatcher

CALLS = 20_000


def _calls(logger: logging.Logger, count: int) -> float:
    """Seconds per call spent in the caller."""
    return timed(lambda: [logger.info("reading %d: %.3f K", n, 4.2) for n in range(count)]) / count


def _fresh(folder: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=folder))


def _check(what: str, found: int, expected: int) -> None:
    # A figure from a run that lost records would compare nothing: stop the benchmark.
    if found != expected:
        raise RuntimeError(f"logging benchmark: {what}: {found} records, expected {expected}")


def _stdlib(folder: Path, count: int) -> float:
    folder = _fresh(folder)
    root = logging.getLogger()
    stream = logging.StreamHandler(open(folder / "console.txt", "w"))  # noqa: SIM115 - closed below
    file = logging.FileHandler(folder / "stdlib.log")
    for handler in (stream, file):
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        return _calls(logging.getLogger("bench"), count)
    finally:
        for handler in (stream, file):
            root.removeHandler(handler)
            handler.close()
        stream.stream.close()
        for name in ("console.txt", "stdlib.log"):
            _check(f"stdlib {name}", _readings(folder / name), count)


def _readings(path: Path) -> int:
    return sum("reading " in line for line in path.read_text().splitlines())


def _ours(folder: Path, count: int, extra: str = "") -> float:
    folder = _fresh(folder)
    ini = folder / "logging.ini"
    ini.write_text(
        "[ConsoleLogger]\nactive = 0\n"
        f"[FileLogger]\nactive = 1\nlog_path = {folder}\nlog_basename = ours\n"
        "log_extension = .log\nlog_level = INFO\n" + extra
    )
    logger = configure_logging(str(ini), logger_name="bench")
    (dispatcher,) = [h for h in logging.getLogger().handlers if isinstance(h, Dispatcher)]
    try:
        return _calls(logger, count)
    finally:
        shutdown_logging()
        (written,) = folder.glob("ours*.log")
        _check("configure_logging file", _readings(written), count)
        records = len(written.read_text().splitlines())  # with the setup's own records
        for sink in dispatcher.queued:
            courier = sink.courier
            # Held back: over the sinks' default rate limit, waiting for the digest; pending:
            # the attempt under way when close() stopped waiting for the server.
            counts = (courier.delivered, courier.dropped, courier.pending, courier.held_back)
            _check(f"{courier.name} (delivered, dropped, being sent, held back {counts})",
                   sum(counts), records)  # fmt: skip


def _slow_server() -> tuple[int, threading.Event]:
    """A TCP server that accepts and never answers: mail and Slack calls there hang."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
        for conn in held:
            conn.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], stop


def run(quick: bool = False) -> list[Comparison]:
    """Seconds per logging call in the caller (lower is better), as microseconds."""
    count = 2_000 if quick else CALLS
    folder = Path(tempfile.mkdtemp(prefix="lab-log-bench-"))
    stdlib, ours = best_of(
        3, lambda: _stdlib(folder, count), lambda: _ours(folder, count), higher_is_better=False
    )
    port, stop = _slow_server()
    credentials = folder / "credentials"
    credentials.write_text("user\npassword\n")
    sinks = (
        f"[MailHandler]\nactive = 1\ncredentials_file = {credentials}\nrecipients = a@lab.test\n"
        f"mail_host = 127.0.0.1\nport = {port}\nsender = d@lab.test\nsubject = x\nlog_level = INFO\ntimeout = 2\n"
        f"[SlackLogger]\nactive = 1\nwebhook_url = http://127.0.0.1:{port}/hook\nlog_level = INFO\ntimeout = 2\n"
    )
    plain, with_sinks = best_of(
        3, lambda: _ours(folder, count), lambda: _ours(folder, count, sinks), higher_is_better=False
    )
    stop.set()
    return [
        Comparison("logging", "configure_logging console+file, per call", "us", ours * 1e6, stdlib * 1e6,
                   "stdlib StreamHandler + FileHandler", "<=1.2x"),
        Comparison("logging", "call with mail + Slack to a hanging server", "us", with_sinks * 1e6, plain * 1e6,
                   "same setup without mail and Slack", "<=1.1x"),
    ]  # fmt: skip
