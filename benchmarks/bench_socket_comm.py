"""Command server round trips: ours next to minimal servers, same protocol, same run."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from loadgen import Exchange, Load, one_shot, run_load
from report import Comparison

HERE = Path(__file__).parent
HOST = "127.0.0.1"


@contextmanager
def _server(kind: str) -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "peers.py"), kind], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()


def _one_shot(port: int) -> Callable[[], Exchange]:
    return lambda: lambda: one_shot(HOST, port, b"ping")


def _persistent(port: int) -> Callable[[], Exchange]:
    def make() -> Exchange:
        streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

        async def exchange() -> None:
            if not streams:
                streams.append(await asyncio.open_connection(HOST, port))
            reader, writer = streams[0]
            writer.write(b"LABCOMM/1 4\nping")
            await writer.drain()
            header = await reader.readuntil(b"\n")
            await reader.readexactly(int(header.split(b" ")[1]))

        return exchange

    return make


def _measure(
    kind: str, exchange: Callable[[int], Callable[[], Exchange]], clients: int, total: int
) -> Load:
    with _server(kind) as port:
        run_load(exchange(port), clients, min(total, 200))  # warm-up
        return run_load(exchange(port), clients, total)


def run(quick: bool = False) -> list[Comparison]:
    """Requests per second, ours against the peer, for each shape of load."""
    total = 1000 if quick else 6000
    cases = [
        ("one-shot, 1 client", "blocking", _one_shot, 1, ">=0.9x"),
        ("one-shot, 8 clients", "asyncio", _one_shot, 8, ">=1.0x"),
        ("one-shot, 64 clients", "asyncio", _one_shot, 64, ">=1.0x"),
        ("persistent, 8 clients", "persistent", _persistent, 8, ">=0.8x"),
        ("persistent, 64 clients", "persistent", _persistent, 64, ">=0.8x"),
    ]
    rows = []
    for what, peer_kind, exchange, clients, target in cases:
        peer_loads, our_loads = [], []
        for _ in range(2 if quick else 3):  # interleaved rounds, best of each
            peer_loads.append(_measure(peer_kind, exchange, clients, total))
            our_loads.append(_measure("ours", exchange, clients, total))
        peer = max(peer_loads, key=lambda load: load.rate)
        ours = max(our_loads, key=lambda load: load.rate)
        rows.append(
            Comparison(
                area="socket_comm",
                what=what,
                unit="req/s",
                ours=ours.rate,
                peer=peer.rate,
                peer_name=f"minimal {peer_kind} server",
                target=target,
                notes={
                    "ours_p50_ms": ours.median_ms,
                    "ours_p99_ms": ours.percentile(0.99),
                    "peer_p50_ms": peer.median_ms,
                    "peer_p99_ms": peer.percentile(0.99),
                    "ours_timeouts": sum(x.timeouts for x in our_loads),
                    "ours_stalls": sum(x.stalls for x in our_loads),
                },
            )
        )
    return rows
