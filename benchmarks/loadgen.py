"""Closed-loop load on a command server that is not itself the bottleneck.

N clients each send a message, wait for the whole reply and send the next one. The
clients are threads of `loadgen.c`, compiled on first use when a C compiler is at hand;
otherwise blocking sockets in threads spread over several worker processes, so that the
generator is never limited by one interpreter. Its own CPU per request is measured and
reported next to the server's: on a small machine both share the cores, and the cheaper
the generator, the more of them the server gets. A request that does not complete
within the timeout is counted, not retried.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

HERE = Path(__file__).parent

STALL = 0.5
"""A reply later than this many seconds counts as a stall."""


@dataclass(frozen=True)
class Job:
    """One load run, as given to a generator."""

    host: str
    port: int
    message: bytes
    clients: int
    total: int
    persistent: bool
    server_pid: int | None
    timeout: float
    max_seconds: float


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
    machine_cpu: float = float("nan")  # seconds of CPU every process used during the run
    generator: str = field(default="python")

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
    def others_cores(self) -> float:
        """Cores kept busy by other processes during the run (the noise on a shared machine)."""
        if not self.seconds:
            return float("nan")
        return max(0.0, self.machine_cpu - self.server_cpu - self.client_cpu) / self.seconds

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


def machine_cpu() -> float:
    """CPU seconds used so far by the whole machine, all cores (Linux ``/proc/stat``)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
    busy = sum(int(value) for value in fields[:8]) - int(fields[3]) - int(fields[4])
    return busy / os.sysconf("SC_CLK_TCK")


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


def _run_python(job: Job) -> Load:
    """The generator in Python: blocking clients in threads, up to one process per core."""
    context = multiprocessing.get_context("fork")
    processes = max(1, min(job.clients, os.cpu_count() or 1))
    shares = [job.clients // processes + (i < job.clients % processes) for i in range(processes)]
    per_client = max(1, job.total // job.clients)
    # One barrier over every client thread of every process, plus this one: the clock
    # starts when all are connected (persistent) and ready.
    barrier = context.Barrier(job.clients + 1)
    pipes, workers = [], []
    for share in shares:
        receiver, sender = context.Pipe(duplex=False)
        worker = context.Process(
            target=_worker,
            args=((job.host, job.port), job.message, job.persistent, share, per_client,
                  job.timeout, job.max_seconds, barrier, sender),
        )  # fmt: skip
        worker.start()
        sender.close()
        pipes.append(receiver)
        workers.append(worker)
    server_before = process_cpu(job.server_pid) if job.server_pid else 0.0
    barrier.wait()
    start = time.perf_counter()
    results = [pipe.recv() for pipe in pipes]
    seconds = time.perf_counter() - start
    server_after = process_cpu(job.server_pid) if job.server_pid else float("nan")
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


@functools.cache
def c_generator() -> Path | None:
    """Compile `loadgen.c` once (cached by its content); None without a C compiler."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        return None
    source = HERE / "loadgen.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    binary = Path(tempfile.gettempdir()) / f"lab-comm-loadgen-{digest}"
    if not binary.exists():
        partial = binary.with_suffix(f".{os.getpid()}")
        built = subprocess.run(
            [compiler, "-O2", "-pthread", "-o", str(partial), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if built.returncode != 0:
            print(f"  loadgen.c does not compile, using the Python generator:\n{built.stderr}")
            return None
        partial.replace(binary)
    return binary


def _run_c(binary: Path, job: Job) -> Load:
    per_client = max(1, job.total // job.clients)
    mode = "framed" if job.persistent else "oneshot"
    server_before = process_cpu(job.server_pid) if job.server_pid else 0.0
    proc = subprocess.Popen(
        [str(binary), job.host, str(job.port), job.message.decode(), str(job.clients),
         str(per_client), str(int(job.timeout * 1000)), str(job.max_seconds), mode],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    server_after = process_cpu(job.server_pid) if job.server_pid else float("nan")
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen exited with {proc.returncode}")
    first, *lines = output.splitlines()
    fields = first.split()
    latencies = [int(line) / 1e9 for line in lines]
    return Load(
        requests=len(latencies),
        seconds=float(fields[1]),
        latencies=latencies,
        timeouts=int(fields[3]),
        stalls=sum(x > STALL for x in latencies),
        server_cpu=server_after - server_before,
        client_cpu=usage.ru_utime + usage.ru_stime,
        generator="C",
    )


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
        The server (an IPv4 address for the C generator).
    message : bytes
        The command sent each time (framed by the generator when ``persistent``).
    clients : int
        Concurrent clients.
    total : int
        Requests in all.
    persistent : bool
        One framed connection per client instead of a connection per request.
    server_pid : int, optional
        The server's process, whose CPU use during the run is recorded.
    """
    binary = None if os.environ.get("LAB_BENCH_PYTHON_LOADGEN") else c_generator()
    job = Job(host, port, message, clients, total, persistent, server_pid, timeout, max_seconds)
    before = machine_cpu()
    load = _run_python(job) if binary is None else _run_c(binary, job)
    load.machine_cpu = machine_cpu() - before
    return load
