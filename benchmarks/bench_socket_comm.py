"""Command server round trips: ours next to three common server designs, same run.

One-shot requests (the exchange of 0.4-era clients: connect, send, read to the close),
each parsed by argparse in every server, from 1, 8 and 64 concurrent clients of a
C load generator. Every server stays up for the whole run; the repetitions are
interleaved (each server in turn, the order turning each time, seven times) and the
median of each is kept, with the spread of the rates and the cores other processes kept
busy meanwhile (the noise of a shared machine). The ratios compared with the targets are
the medians of the per-rep ratios, as in the database benchmark: two servers measured
one right after the other share the load of the moment. The target is the fastest peer at each concurrency, and a server CPU per
request no higher than the blocking loop's (that CPU competes with acquisition in the
daemon's process). With LAB_BENCH_CALLGRIND=1 (and valgrind installed), each server's
interpreter instructions per request are counted first: repeatable where CPU time is not.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from loadgen import Load, c_generator, run_load
from peers import MESSAGE, uvloop_available
from report import Comparison

HERE = Path(__file__).parent
HOST = "127.0.0.1"
REPS = 7


@contextmanager
def _server(kind: str) -> Iterator[tuple[int, int]]:
    """Start a peer; yield its port and process id."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "peers.py"), kind], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline()), proc.pid
    finally:
        proc.kill()
        proc.wait()


def _instructions(kind: str, clients: int, total: int) -> float:
    """Interpreter instructions per request of one server under callgrind (user space).

    Unlike CPU time, the count does not move with the load of other processes: it is the
    repeatable measure of what a server does per request, system calls excluded.
    """
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, str(HERE / "peers.py"), kind],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            run_load(HOST, port, MESSAGE, clients, 300, timeout=60)  # warm-up, not counted
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True)
            load = run_load(HOST, port, MESSAGE, clients, total, timeout=60, max_seconds=600)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True)
        finally:
            proc.kill()
            proc.wait()
        dumps = sorted(Path(folder).glob("callgrind.out*"), key=lambda path: path.stat().st_mtime)
        found = re.search(r"^(?:summary|totals): (\d+)", dumps[-1].read_text(), re.MULTILINE)
    if found is None or not load.requests:
        return float("nan")
    return int(found.group(1)) / load.requests


def _print_instructions(kinds: list[str], quick: bool) -> None:
    """With LAB_BENCH_CALLGRIND=1 and valgrind installed: instructions per request."""
    if not os.environ.get("LAB_BENCH_CALLGRIND"):
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("  LAB_BENCH_CALLGRIND: valgrind is not installed, no instruction counts")
        return
    # One client: each request wakes the server alone, the path a lone lab client takes.
    for clients, total in ((1, 1000), (8, 2000)):
        print(f"  instructions per request (callgrind, user space, {clients} clients):", flush=True)
        for kind in kinds:
            count = _instructions(kind, clients, 500 if quick else total)
            print(f"    {kind:<10} {count:>9,.0f}", flush=True)


def _median_load(loads: list[Load]) -> Load:
    """The run with the median rate (its latencies and CPU belong together)."""
    return sorted(loads, key=lambda load: load.rate)[len(loads) // 2]


def _others(loads: list[Load]) -> float:
    """Cores other processes kept busy, over all the given runs."""
    seconds = sum(load.seconds for load in loads)
    return sum(load.others_cores * load.seconds for load in loads) / seconds if seconds else 0.0


def _notes(prefix: str, load: Load) -> dict[str, float]:
    return {
        f"{prefix}_rate": round(load.rate, 1),
        f"{prefix}_p50_ms": round(load.median_ms, 3),
        f"{prefix}_p99_ms": round(load.percentile(0.99), 3),
        f"{prefix}_server_us_per_request": round(load.server_us_per_request, 1),
        f"{prefix}_loadgen_us_per_request": round(load.client_us_per_request, 1),
        f"{prefix}_timeouts": load.timeouts,
        f"{prefix}_stalls": load.stalls,
    }


def _measure(
    servers: dict[str, tuple[int, int]], clients: int, total: int, persistent: bool = False
) -> dict[str, list[Load]]:
    runs: dict[str, list[Load]] = {kind: [] for kind in servers}
    for port, _ in servers.values():  # warm-up
        run_load(HOST, port, MESSAGE, clients, min(total, 300), persistent=persistent)
    kinds = list(servers)
    for rep in range(REPS):
        # Interleaved, a burst of load elsewhere hits every server; the order turns each
        # rep, so that no server always runs first or always after the same one.
        shift = rep % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            port, pid = servers[kind]
            load = run_load(
                HOST, port, MESSAGE, clients, total, persistent=persistent, server_pid=pid
            )
            runs[kind].append(load)
    return runs


def _paired(ours: list[Load], peer: list[Load], cost: bool = False) -> dict[str, float]:
    """The median and range of the per-rep ratios (rates, or CPU per request with cost).

    The reps of two servers ran close together, under the same load from elsewhere:
    their ratio moves less than the ratio of two medians taken over the whole run.
    """
    if cost:
        pairs = zip(ours, peer, strict=True)
        ratios = [a.server_us_per_request / b.server_us_per_request for a, b in pairs]
    else:
        ratios = [a.rate / b.rate for a, b in zip(ours, peer, strict=True)]
    return {
        "median_ratio": statistics.median(ratios),
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
    }


def _print_details(what: str, runs: dict[str, list[Load]]) -> dict[str, Load]:
    """Print the median run of each server and the spread; return the median runs."""
    every = [load for loads in runs.values() for load in loads]
    print(f"  {what} (other processes: {_others(every):.2f} cores busy on average):")
    medians = {}
    for kind, loads in runs.items():
        load = medians[kind] = _median_load(loads)
        rates = sorted(run.rate for run in loads)
        cpus = sorted(run.server_us_per_request for run in loads)
        print(
            f"    {kind:<10} {load.rate:>9,.0f} req/s ({rates[0]:,.0f}-{rates[-1]:,.0f})"
            f"  p50 {load.median_ms:6.3f} ms  p99 {load.percentile(0.99):7.3f} ms"
            f"  server {load.server_us_per_request:5.1f} us/req ({cpus[0]:.1f}-{cpus[-1]:.1f})"
            f"  loadgen {load.client_us_per_request:5.1f} us/req  timeouts {load.timeouts}",
            flush=True,
        )
    return medians


def _row(
    what: str,
    ours: float,
    peer: float,
    peer_name: str,
    notes: dict[str, float],
    unit: str = "req/s",
    target: str = ">=1.0x",
    median_ratio: float | None = None,
) -> Comparison:
    return Comparison("socket_comm", what, unit, ours, peer, peer_name, target, notes, median_ratio)


def run(quick: bool = False) -> list[Comparison]:
    """Requests per second and server CPU per request, ours against each peer."""
    total = 1000 if quick else 4000
    kinds = ["blocking", "asyncio", *(["uvloop"] if uvloop_available() else []), "ours"]
    if "uvloop" not in kinds:
        print("  uvloop is not installed: that peer is left out", flush=True)
    generator = "C (loadgen.c)" if c_generator() else "Python, several processes"
    print(f"  load generator: {generator}", flush=True)
    _print_instructions(kinds, quick)
    rows = []
    with ExitStack() as stack:
        servers = {kind: stack.enter_context(_server(kind)) for kind in kinds}
        for clients in (1, 8, 64):
            runs = _measure(servers, clients, total)
            what = f"one-shot, {clients} client{'s' if clients > 1 else ''}"
            loads = _print_details(what, runs)
            ours = loads.pop("ours")
            fastest = max(loads, key=lambda kind: loads[kind].rate)
            notes = _notes("ours", ours)
            for kind, load in loads.items():
                notes |= _notes(kind, load)
            notes["others_cores"] = round(_others([x for xs in runs.values() for x in xs]), 2)
            peer = loads[fastest]
            rate = _paired(runs["ours"], runs[fastest])
            cpu_pair = _paired(runs["ours"], runs["blocking"], cost=True)
            print(
                f"    ours / {fastest}, per rep: rate {rate['median_ratio']:.2f}x"
                f" ({rate['min_ratio']:.2f}-{rate['max_ratio']:.2f}), CPU per request"
                f" / blocking {cpu_pair['median_ratio']:.2f}x"
                f" ({cpu_pair['min_ratio']:.2f}-{cpu_pair['max_ratio']:.2f})",
                flush=True,
            )
            notes |= {f"rate_{key}": round(value, 3) for key, value in rate.items()}
            rows.append(_row(what, ours.rate, peer.rate, f"fastest peer ({fastest})", notes,
                             median_ratio=rate["median_ratio"]))  # fmt: skip
            cpu, blocking = ours.server_us_per_request, loads["blocking"].server_us_per_request
            cpu_notes = {f"cpu_{key}": round(value, 3) for key, value in cpu_pair.items()}
            rows.append(_row(f"server CPU per request, {what}", cpu, blocking,
                             "blocking accept loop", cpu_notes, unit="us", target="<=1.0x",
                             median_ratio=cpu_pair["median_ratio"]))  # fmt: skip
    with ExitStack() as stack:
        servers = {kind: stack.enter_context(_server(kind)) for kind in ("persistent", "ours")}
        for clients in (8, 64):
            runs = _measure(servers, clients, total * 2, persistent=True)
            what = f"persistent, {clients} clients"
            loads = _print_details(what, runs)
            ours, peer = loads["ours"], loads["persistent"]
            notes = _notes("ours", ours) | _notes("peer", peer)
            paired = _paired(runs["ours"], runs["persistent"])
            rows.append(_row(what, ours.rate, peer.rate, "asyncio framed server", notes,
                             target=">=0.8x", median_ratio=paired["median_ratio"]))  # fmt: skip
    return rows
