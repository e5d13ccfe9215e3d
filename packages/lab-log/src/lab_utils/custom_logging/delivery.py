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

:class:`Dispatcher` is what ``configure_logging`` puts on the root logger: the caller
prepares each record once and puts it in one queue. One listener thread takes it from
there, writes it to the local sinks (console, file) and hands the same frozen record to
the queue of each network sink that wants it, so the caller pays one queue put per call
however many sinks there are, and no record is copied or queued twice.
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
        self._overflowing = False
        self._sentinel_queued = False
        self.dropped = 0
        """Records lost: queue full, or the sink failed while delivering them."""
        self.delivered = 0
        """Records delivered, one by one or summed up in a digest."""

    @property
    def pending(self) -> int:
        """Records queued or being delivered: neither delivered nor dropped yet."""
        # The stop sentinel waits in the queue too, and is no record.
        return self._records.unfinished_tasks - self._sentinel_queued

    @property
    def held_back(self) -> int:
        """Records held back by the rate limit, to be summed up in the next digest."""
        return self._held.count

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
            if not self._overflowing:
                # Said once per overflow, not per record: a flood must not flood stderr too.
                self._overflowing = True
                self._report(
                    f"queue full ({self._records.maxsize} records waiting):"
                    " dropping new records until it drains"
                )
        else:
            if self._overflowing and self._records.qsize() * 2 <= self._records.maxsize:
                self._overflowing = False
                self._report(f"queue drained ({self.dropped} records lost so far)")

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
        deadline = time.monotonic() + timeout
        if not self._sentinel_queued:  # a second stop (logging's own at exit) waits again
            # Set first: the thread may take the sentinel as soon as it is in.
            self._sentinel_queued = True
            try:
                self._records.put(_SENTINEL, timeout=timeout)
            except queue.Full:
                self._sentinel_queued = False
        if self._sentinel_queued:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not thread.is_alive():
            self._thread = None
            return
        # The sink hangs: the thread is left to finish (a daemon, it ends with the
        # process), and what it still holds is said now rather than lost unseen.
        self._report(
            f"closing after {timeout:g} s with {self.pending} records not delivered"
            f" and {self.held_back} held back for a digest ({self.dropped} lost before)"
        )

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
                self._sentinel_queued = False
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
        held = self._held
        if not held.count:
            return
        digest, last = self._digest, held.last
        if digest is None or last is None:
            self.dropped += held.count
        else:
            # The records summed up count as delivered (or lost) with their digest.
            self._attempt(lambda: digest(held.summary(), last), records=held.count)
        # Replaced only now: until the digest went, its records count as held back.
        self._held = HeldBack()

    def _attempt(self, action: Callable[[], object], records: int = 1) -> None:
        try:
            action()
        except Exception as exc:
            self.dropped += records
            if not self._failing:
                self._failing = True
                self._report(
                    f"cannot deliver: {type(exc).__name__}: {exc};"
                    " dropping records until it recovers"
                )
        else:
            self.delivered += records
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


class _FanOut(logging.handlers.QueueListener):
    """The dispatcher's thread: writes the local sinks and feeds each network sink's queue."""

    def __init__(
        self,
        records: queue.SimpleQueue[logging.LogRecord | None],
        local: tuple[logging.Handler, ...],
        queued: tuple[QueuedDelivery, ...],
    ) -> None:
        super().__init__(records, *local, respect_handler_level=True)
        self.queued = queued

    def handle(self, record: logging.LogRecord) -> None:
        """Write ``record`` to the local sinks, queue it for each network sink that wants it."""
        super().handle(record)
        for sink in self.queued:
            if record.levelno < sink.level:
                continue
            try:
                if sink.filter(record):
                    sink.enqueue(record)
            except Exception:
                # A faulty filter must not end this thread, which every sink depends on.
                sink.handleError(record)


class Dispatcher(_FreezingQueueHandler):
    """The root handler of ``configure_logging``: one prepared record for every sink.

    The caller prepares a record once and puts it in this handler's one queue, when some
    sink's level admits it. A :class:`logging.handlers.QueueListener` thread takes it
    from there: it writes the local sinks (console, file) and gives the same prepared
    record to the bounded queue of each :class:`QueuedDelivery` sink whose level it
    reaches and whose filters it passes. The caller's cost is thus one level check, one
    copy and one queue put, whatever the number of sinks; a network sink's queue is never
    touched by the caller.

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
        self._listener = _FanOut(records, self.local, self.queued)
        # Levels are read once here, like the root logger's level set from them; a record
        # below every sink's level costs the caller one comparison, not even a copy.
        self._level = min((h.level for h in (*self.local, *self.queued)), default=None)
        self._put = records.put
        self._started = False

    def start(self) -> None:
        """Start the thread that feeds every sink."""
        if self._level is not None and not self._started:
            self._listener.start()
            self._started = True

    def emit(self, record: logging.LogRecord) -> None:
        """Prepare ``record`` once and queue it for the sinks' thread.

        Parameters
        ----------
        record : logging.LogRecord
            The record to send.
        """
        try:
            if self._level is not None and record.levelno >= self._level:
                self._put(self.prepare(record))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Hand over what is queued, stop the thread, close every sink (draining them)."""
        if self._started:
            self._listener.stop()
            self._started = False
        for handler in (*self.local, *self.queued):
            handler.close()
        super().close()
