"""Closed-loop load on a command server that is not itself the bottleneck.

N clients each send a message, wait for the whole reply and send the next one. Clients
are blocking sockets in threads, spread over several worker processes, so the generator
is never limited by one interpreter: its own CPU per request is measured and reported
next to the server's, which shows whether it had headroom. A request that does not
complete within the timeout is counted, not retried.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

STALL = 0.5
"""A reply later than this many seconds counts as a stall."""


@dataclass
class Load:
    """What one load run saw."""

    requests: int
    seconds: float
    latencies: list[float]
    timeouts: int
    stalls: int
    server_cpu: float = float("nan")  # seconds of CPU the server used during the run
    client_cpu: float = float("nan")  # seconds of CPU the generator used during the run
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Latency at quantile q (0..1), in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def median_ms(self) -> float:
        """Median latency in milliseconds."""
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def server_us_per_request(self) -> float:
        """Server CPU per completed request, in microseconds."""
        return self.server_cpu / self.requests * 1e6 if self.requests else float("nan")

    @property
    def client_us_per_request(self) -> float:
        """Generator CPU per completed request, in microseconds."""
        return self.client_cpu / self.requests * 1e6 if self.requests else float("nan")


def process_cpu(pid: int) -> float:
    """CPU seconds used so far by every thread of process ``pid`` (Linux ``/proc``)."""
    total_ns = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            # schedstat: nanoseconds on the CPU, far finer than the 10 ms ticks of stat.
            total_ns += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total_ns / 1e9


def _one_shot(address: tuple[str, int], message: bytes, timeout: float) -> None:
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(message)
        while sock.recv(65536):
            pass


class _Persistent:
    def __init__(self, address: tuple[str, int], message: bytes, timeout: float) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = b"LABCOMM/1 %d\n" % len(message) + message
        self.buffer = b""

    def __call__(self) -> None:
        self.sock.sendall(self.request)
        while b"\n" not in self.buffer:
            self.buffer += self._recv()
        header, _, rest = self.buffer.partition(b"\n")
        length = int(header.split(b" ")[1])
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        return data


def _worker(
    address: tuple[str, int],
    message: bytes,
    persistent: bool,
    clients: int,
    count: int,
    timeout: float,
    max_seconds: float,
    barrier: threading.Barrier,
    out: Connection,
) -> None:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    timeouts = [0] * clients

    def client(n: int) -> None:
        exchange = _Persistent(address, message, timeout) if persistent else None
        barrier.wait()
        deadline = time.perf_counter() + max_seconds
        mine = latencies[n]
        perf = time.perf_counter
        for _ in range(count):
            start = perf()
            if start > deadline:
                break
            try:
                if exchange is None:
                    _one_shot(address, message, timeout)
                else:
                    exchange()
            except OSError:
                timeouts[n] += 1
                continue
            mine.append(perf() - start)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    before = resource.getrusage(resource.RUSAGE_SELF)
    for thread in threads:
        thread.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out.send(([x for lat in latencies for x in lat], sum(timeouts), cpu))
    out.close()


def run_load(
    host: str,
    port: int,
    message: bytes,
    clients: int,
    total: int,
    *,
    persistent: bool = False,
    server_pid: int | None = None,
    timeout: float = 5.0,
    max_seconds: float = 30.0,
) -> Load:
    """Run ``total`` requests from ``clients`` concurrent clients; return what was seen.

    Parameters
    ----------
    host, port : str, int
        The server.
    message : bytes
        The command sent each time (framed by the generator when ``persistent``).
    clients : int
        Concurrent clients, spread over up to ``os.cpu_count()`` worker processes.
    total : int
        Requests in all.
    persistent : bool
        One framed connection per client instead of a connection per request.
    server_pid : int, optional
        The server's process, whose CPU use during the run is recorded.
    """
    context = multiprocessing.get_context("fork")
    processes = max(1, min(clients, os.cpu_count() or 1))
    shares = [clients // processes + (i < clients % processes) for i in range(processes)]
    per_client = max(1, total // clients)
    # One barrier over every client thread of every process, plus this one: the clock
    # starts when all are connected (persistent) and ready.
    barrier = context.Barrier(clients + 1)
    pipes, workers = [], []
    for share in shares:
        receiver, sender = context.Pipe(duplex=False)
        worker = context.Process(
            target=_worker,
            args=((host, port), message, persistent, share, per_client, timeout, max_seconds,
                  barrier, sender),
        )  # fmt: skip
        worker.start()
        sender.close()
        pipes.append(receiver)
        workers.append(worker)
    server_before = process_cpu(server_pid) if server_pid else 0.0
    barrier.wait()
    start = time.perf_counter()
    results = [pipe.recv() for pipe in pipes]
    seconds = time.perf_counter() - start
    server_after = process_cpu(server_pid) if server_pid else float("nan")
    for worker in workers:
        worker.join()
    latencies = [x for lat, _, _ in results for x in lat]
    return Load(
        requests=len(latencies),
        seconds=seconds,
        latencies=latencies,
        timeouts=sum(t for _, t, _ in results),
        stalls=sum(x > STALL for x in latencies),
        server_cpu=server_after - server_before,
        client_cpu=sum(c for _, _, c in results),
    )
