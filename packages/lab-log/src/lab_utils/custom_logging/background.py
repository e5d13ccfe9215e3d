"""Delivery of records to network sinks from a worker thread, never from the caller.

Each network handler (mail, Slack, alarm socket) owns a :class:`Courier`: ``emit`` puts the
record in a bounded queue and returns; the courier's thread delivers it. A sink that is
down, slow or hanging therefore never stops, slows or kills the caller or the other sinks.
Failures are reported once on stderr (and once more when the sink recovers), not as one
traceback per record, and the courier can hold back floods and send a digest instead.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

_STOP = object()


@dataclass
class RateLimit:
    """At most ``count`` deliveries per ``period`` seconds; ``count`` 0 means no limit.

    Records over the limit are held back and summed up in one digest at the end of the
    period.
    """

    count: int = 0
    period: float = 60.0
    _window_start: float = field(default=0.0, repr=False)
    _sent: int = field(default=0, repr=False)

    def allow(self, now: float) -> bool:
        """Count one delivery at ``now``; False when it exceeds the limit."""
        if self.count <= 0:
            return True
        if now - self._window_start >= self.period:
            self._window_start, self._sent = now, 0
        self._sent += 1
        return self._sent <= self.count

    def window_end(self) -> float:
        """Time at which the current window closes."""
        return self._window_start + self.period


@dataclass
class HeldBack:
    """What a rate-limited courier did not send during one period."""

    count: int = 0
    levels: Counter[str] = field(default_factory=Counter)
    first: logging.LogRecord | None = None
    last: logging.LogRecord | None = None

    def add(self, record: logging.LogRecord) -> None:
        """Remember ``record`` as held back."""
        self.count += 1
        self.levels[record.levelname] += 1
        self.first = self.first or record
        self.last = record

    def summary(self) -> str:
        """One paragraph describing the held-back records."""
        levels = ", ".join(f"{n} {name}" for name, n in sorted(self.levels.items()))
        lines = [f"{self.count} more records were held back by the rate limit ({levels})."]
        if self.first is not None:
            lines.append(
                f"First: {self.first.levelname} {self.first.name}: {self.first.getMessage()}"
            )
        if self.last is not None and self.last is not self.first:
            lines.append(f"Last: {self.last.levelname} {self.last.name}: {self.last.getMessage()}")
        return "\n".join(lines)


class Courier:
    """A bounded queue and a worker thread that hands records to ``deliver``.

    Parameters
    ----------
    name : str
        Names the sink in failure reports and the thread name.
    deliver : callable
        Sends one record; raises on failure. Runs in the worker thread only.
    digest : callable, optional
        Sends the summary text of held-back records (rate limit); defaults to dropping it.
    capacity : int, optional
        Queue size; records beyond it are dropped and counted (the caller never blocks).
    rate_limit : RateLimit, optional
        Flood protection; no limit by default.
    """

    def __init__(
        self,
        name: str,
        deliver: Callable[[logging.LogRecord], None],
        digest: Callable[[str, logging.LogRecord], None] | None = None,
        capacity: int = 10_000,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self.name = name
        self._deliver = deliver
        self._digest = digest
        self._queue: queue.Queue[object] = queue.Queue(capacity)
        self._rate = rate_limit or RateLimit()
        self._held = HeldBack()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._closed = False
        self.dropped = 0
        """Records lost: queue full, or the sink failed while delivering them."""
        self.delivered = 0
        """Records (and digests) delivered."""

    def submit(self, record: logging.LogRecord) -> None:
        """Queue ``record`` for delivery; never blocks."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=f"lab-log {self.name}", daemon=True
                )
                self._closed = False
                self._thread.start()
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record was handled; False when ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (waiting at most ``timeout`` seconds), then stop the thread."""
        thread = self._thread
        if self._closed or thread is None or not thread.is_alive():
            return
        self._closed = True
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        thread.join(timeout)

    def _run(self) -> None:
        while True:
            wait = None
            if self._held.count:
                wait = max(0.0, self._rate.window_end() - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                self._send_digest()
                continue
            try:
                if item is _STOP:
                    self._send_digest()
                    return
                assert isinstance(item, logging.LogRecord)
                self._handle(item)
            finally:
                self._queue.task_done()

    def _handle(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        if self._held.count and now >= self._rate.window_end():
            self._send_digest()
        if not self._rate.allow(now):
            self._held.add(record)
            return
        self._attempt(lambda: self._deliver(record))

    def _send_digest(self) -> None:
        held, self._held = self._held, HeldBack()
        if held.count and self._digest is not None and held.last is not None:
            last = held.last
            self._attempt(lambda: self._digest(held.summary(), last) if self._digest else None)

    def _attempt(self, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:
            self.dropped += 1
            if not self._failing:
                self._failing = True
                self._report(
                    f"cannot deliver: {type(exc).__name__}: {exc};"
                    " dropping records until it recovers"
                )
        else:
            self.delivered += 1
            if self._failing:
                self._failing = False
                self._report(f"delivering again ({self.dropped} records lost so far)")

    def _report(self, text: str) -> None:
        # stderr, like logging's own last resort: logging the failure through the logging
        # system could feed it back into the failing sink.
        try:
            sys.stderr.write(f"lab_utils.custom_logging: {self.name}: {text}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
