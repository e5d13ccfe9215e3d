"""Queued delivery to slow sinks: the caller queues, a worker thread delivers.

Built on the standard library's queue handler and listener. A network handler (mail,
Slack, alarm socket) is a :class:`QueuedDelivery`, a :class:`logging.handlers.QueueHandler`
whose ``prepare`` freezes the record once (message, arguments and traceback merged into
the text) and whose ``enqueue`` puts it in a bounded queue without ever blocking. Its
:class:`Courier`, a :class:`logging.handlers.QueueListener`, takes records from that queue
in its own thread and calls the handler's :meth:`QueuedDelivery.deliver`. A sink that is
down, slow or hanging therefore never stops, slows or kills the caller or the other sinks.
Failures are reported once on stderr (and once more when the sink recovers), not as one
traceback per record, and the courier can hold records back in a flood and send a digest.

:class:`Dispatcher` is what ``configure_logging`` puts on the root logger: it prepares each
record once and hands that one frozen record to the queue of the local sinks (console,
file) and to the queue of each network sink, so no record is copied or queued twice.
"""

from __future__ import annotations

import copy
import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

# What QueueListener's loop stops on (its documented ``_sentinel``).
_SENTINEL = None

# Formats what ``prepare`` freezes: the message with its traceback, as 0.4's queue did.
_MESSAGE_ONLY = logging.Formatter()


class RateLimit:
    """At most ``count`` deliveries per ``period`` seconds; ``count`` 0 means no limit.

    Records over the limit are held back and summed up in one digest at the end of the
    period.

    Parameters
    ----------
    count : int, optional
        Deliveries allowed per window; 0 (default) for no limit.
    period : float, optional
        Length of the window in seconds.
    """

    def __init__(self, count: int = 0, period: float = 60.0) -> None:
        self.count = count
        self.period = period
        self._window_start = 0.0
        self._sent = 0

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


class HeldBack:
    """What a rate-limited courier did not send during one period."""

    def __init__(self) -> None:
        self.count = 0
        self.levels: Counter[str] = Counter()
        self.first: logging.LogRecord | None = None
        self.last: logging.LogRecord | None = None

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


class Courier(logging.handlers.QueueListener):
    """The worker of one sink: takes records from its bounded queue and delivers them.

    Parameters
    ----------
    name : str
        Names the sink in failure reports and the thread name.
    records : queue.Queue
        The bounded queue the handler's ``enqueue`` fills.
    deliver : callable
        Sends one record; raises on failure. Runs in the worker thread only.
    digest : callable, optional
        Sends the summary text of held-back records (rate limit); defaults to dropping it.
    rate_limit : RateLimit, optional
        Flood protection; no limit by default.
    """

    def __init__(
        self,
        name: str,
        records: queue.Queue[logging.LogRecord | None],
        deliver: Callable[[logging.LogRecord], None],
        digest: Callable[[str, logging.LogRecord], None] | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        super().__init__(records)
        self._records = records
        self.name = name
        self._deliver = deliver
        self._digest = digest
        self._rate = rate_limit or RateLimit()
        self._held = HeldBack()
        self._start_lock = threading.Lock()
        self._failing = False
        self.dropped = 0
        """Records lost: queue full, or the sink failed while delivering them."""
        self.delivered = 0
        """Records (and digests) delivered."""

    def submit(self, record: logging.LogRecord) -> None:
        """Queue a prepared ``record``, starting the thread on first use; never blocks."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            with self._start_lock:
                # Started lazily: a handler that is built but never used costs no thread.
                if self._thread is None or not self._thread.is_alive():
                    self._thread = None
                    self.start()
                    self._name_thread()
        try:
            self._records.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def _name_thread(self) -> None:
        # Named after the sink, for py-spy and thread dumps; QueueListener leaves it unnamed.
        if self._thread is not None:
            self._thread.name = f"lab-log {self.name}"

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record was handled; False when ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        with self._records.all_tasks_done:
            while self._records.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._records.all_tasks_done.wait(remaining)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (waiting at most ``timeout`` seconds), then stop the thread.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the queue to drain; a hanging sink is abandoned after it.
        """
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._thread = None
            return
        try:
            self._records.put(_SENTINEL, timeout=timeout)
        except queue.Full:
            return
        thread.join(timeout)
        if not thread.is_alive():
            self._thread = None

    def dequeue(self, block: bool) -> logging.LogRecord:
        """Wait for the next record, sending the digest when a rate-limit window closes."""
        while True:
            wait = None
            if self._held.count:
                wait = max(0.0, self._rate.window_end() - time.monotonic())
            try:
                item = self._records.get(block, timeout=wait)
            except queue.Empty:
                self._send_digest()
                continue
            if item is _SENTINEL:
                self._send_digest()
            # The sentinel too goes back to the listener's loop, which stops on it.
            return item  # type: ignore[return-value]

    def handle(self, record: logging.LogRecord) -> None:
        """Deliver ``record``, or hold it back when over the rate limit."""
        now = time.monotonic()
        if self._held.count and now >= self._rate.window_end():
            self._send_digest()
        if not self._rate.allow(now):
            self._held.add(record)
            return
        self._attempt(lambda: self._deliver(record))

    def _send_digest(self) -> None:
        held, self._held = self._held, HeldBack()
        digest = self._digest
        if held.count and digest is not None and held.last is not None:
            last = held.last
            self._attempt(lambda: digest(held.summary(), last))

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


class _FreezingQueueHandler(logging.handlers.QueueHandler):
    """The standard queue handler, with the stack text cleared as Python 3.12+ does."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """Return a frozen copy of ``record``: message, arguments and traceback merged.

        Parameters
        ----------
        record : logging.LogRecord
            The caller's record, left unchanged.

        Returns
        -------
        logging.LogRecord
            The copy every sink receives.
        """
        prepared: logging.LogRecord = super().prepare(record)
        # Already in the message; 3.10 and 3.11 leave it set, and sinks would print it twice.
        prepared.stack_info = None
        return prepared


class QueuedDelivery(_FreezingQueueHandler):
    """Base of the network handlers: ``emit`` returns at once, a worker thread delivers.

    ``prepare`` is the standard library's: it freezes the message text (traceback
    included) into a copy of the record. The handler's own formatter is applied at
    delivery time, by :meth:`render`. Subclasses call their standard-library base's
    ``__init__``, then :meth:`start_courier`; they implement :meth:`deliver` (one record)
    and may implement :meth:`deliver_digest` (the summary of records held back).
    """

    _courier: Courier

    def start_courier(
        self, name: str, rate_limit: int = 0, rate_period: float = 60.0, capacity: int = 10_000
    ) -> None:
        """Create this handler's bounded queue and courier.

        Parameters
        ----------
        name : str
            Names the sink in failure reports.
        rate_limit : int, optional
            At most this many messages per ``rate_period`` seconds; 0 (default) for no limit.
        rate_period : float, optional
            Length of the rate-limit window in seconds.
        capacity : int, optional
            Records the queue holds before new ones are dropped (and counted).
        """
        self.queue: queue.Queue[logging.LogRecord | None] = queue.Queue(capacity)
        self.listener = None
        self._courier = Courier(
            name,
            self.queue,
            self.deliver,
            self.deliver_digest,
            rate_limit=RateLimit(rate_limit, rate_period),
        )

    @property
    def courier(self) -> Courier:
        """The courier delivering for this handler (counters ``delivered`` and ``dropped``)."""
        return self._courier

    def format(self, record: logging.LogRecord) -> str:
        """Return the message text ``prepare`` freezes: the message and any traceback.

        The sink's layout is applied later, in the worker, by :meth:`render`.
        """
        return _MESSAGE_ONLY.format(record)

    def render(self, record: logging.LogRecord) -> str:
        """Format a prepared ``record`` with this handler's formatter, for delivery."""
        return (self.formatter or _MESSAGE_ONLY).format(record)

    def enqueue(self, record: logging.LogRecord) -> None:
        """Hand a prepared ``record`` to the courier; never blocks, counts what is dropped."""
        self._courier.submit(record)

    def deliver(self, record: logging.LogRecord) -> None:
        """Send one record; runs in the worker thread and raises on failure."""
        raise NotImplementedError

    def deliver_digest(self, text: str, last: logging.LogRecord) -> None:
        """Send the summary of held-back records; by default as a record like ``last``."""
        summary = copy.copy(last)
        summary.msg, summary.message, summary.args = text, text, None
        self.deliver(summary)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait (at most ``timeout`` seconds) until every queued record was handled."""
        self._courier.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, waiting at most ``timeout`` seconds, then close."""
        self._courier.stop(timeout)
        super().close()


class Dispatcher(_FreezingQueueHandler):
    """The root handler of ``configure_logging``: one prepared record for every sink.

    Local sinks (console, file) are served by a standard :class:`QueueListener` thread
    from this handler's own queue; each :class:`QueuedDelivery` sink gets the same
    prepared record in its own bounded queue, when the record reaches its level and
    passes its filters.

    Parameters
    ----------
    local : iterable of logging.Handler
        Handlers written by the listener thread.
    queued : iterable of QueuedDelivery
        Network handlers, each with its own worker.
    """

    def __init__(
        self, local: Iterable[logging.Handler] = (), queued: Iterable[QueuedDelivery] = ()
    ) -> None:
        records: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        super().__init__(records)
        self.local = tuple(local)
        self.queued = tuple(queued)
        self._listener = logging.handlers.QueueListener(
            records, *self.local, respect_handler_level=True
        )
        self._local_level = min((h.level for h in self.local), default=None)
        self._started = False

    def start(self) -> None:
        """Start the thread of the local sinks."""
        if self.local and not self._started:
            self._listener.start()
            self._started = True

    def emit(self, record: logging.LogRecord) -> None:
        """Prepare ``record`` once and queue it for every sink that wants it.

        Parameters
        ----------
        record : logging.LogRecord
            The record to send.
        """
        try:
            local = self._local_level is not None and record.levelno >= self._local_level
            sinks = [sink for sink in self.queued if record.levelno >= sink.level]
            if not (local or sinks):
                return  # no sink wants it: not even the copy is made
            prepared = self.prepare(record)
            if local:
                self.enqueue(prepared)
            for sink in sinks:
                if sink.filter(prepared):
                    sink.enqueue(prepared)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Write what the local sinks have queued, stop their thread, close every sink."""
        if self._started:
            self._listener.stop()
            self._started = False
        for handler in (*self.local, *self.queued):
            handler.close()
        super().close()
