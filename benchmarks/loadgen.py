"""Closed-loop load on a command server from N concurrent asyncio clients.

Each client sends a message, waits for the whole reply, and sends the next one, for a fixed
number of requests (bounded in count and in time). Connections that do not answer within
the timeout are counted, not retried.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Exchange = Callable[[], Awaitable[None]]


@dataclass
class Load:
    """What one load run saw."""

    requests: int
    seconds: float
    latencies: list[float]
    timeouts: int
    stalls: int  # answered, but later than STALL seconds

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds

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


STALL = 0.5


async def one_shot(host: str, port: int, message: bytes) -> None:
    """Old protocol: connect, send one unterminated message, read until the server closes."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(message)
    await writer.drain()
    await reader.read()
    writer.close()
    await writer.wait_closed()


async def _client(
    exchange: Exchange, count: int, timeout: float, load: Load, deadline: float
) -> None:
    for _ in range(count):
        if time.perf_counter() > deadline:
            return
        start = time.perf_counter()
        try:
            await asyncio.wait_for(exchange(), timeout)
        except (TimeoutError, asyncio.TimeoutError, OSError):
            load.timeouts += 1
            continue
        elapsed = time.perf_counter() - start
        load.latencies.append(elapsed)
        load.stalls += elapsed > STALL


def run_load(
    make_exchange: Callable[[], Exchange],
    clients: int,
    total: int,
    timeout: float = 5.0,
    max_seconds: float = 30.0,
) -> Load:
    """Run `total` requests spread over `clients` concurrent clients; return what was seen."""

    async def main() -> Load:
        load = Load(0, 0.0, [], 0, 0)
        per_client = max(1, total // clients)
        start = time.perf_counter()
        deadline = start + max_seconds
        await asyncio.gather(
            *(_client(make_exchange(), per_client, timeout, load, deadline) for _ in range(clients))
        )
        load.seconds = time.perf_counter() - start
        load.requests = len(load.latencies)
        return load

    return asyncio.run(main())
