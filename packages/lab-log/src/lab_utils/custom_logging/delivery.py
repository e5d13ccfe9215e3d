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

Closing waits at most one timeout in all: each network sink's own ``timeout``, the sinks
side by side (:func:`close_sinks`; at exit too, for handlers built by hand). A sink that
has not finished by then drops what it still holds and says in one line on stderr how
many records it could not deliver, which, and that they are lost.
"""

from __future__ import annotations

import atexit
import copy
import logging
import logging.handlers
import queue
import sys
import threading
import time
import weakref
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
    """Records a courier did not send one by one: held back for a digest, or lost."""

    def __init__(self) -> None:
        self.count = 0
        self.levels: Counter[str] = Counter()
        self.first: logging.LogRecord | None = None
        self.last: logging.LogRecord | None = None

    def add(self, record: logging.LogRecord) -> None:
        """Remember ``record``."""
        self.count += 1
        self.levels[record.levelname] += 1
        self._extend(record, record)

    def merge(self, other: HeldBack) -> None:
        """Take in the records ``other`` remembers."""
        self.count += other.count
        self.levels.update(other.levels)
        if other.first is not None and other.last is not None:
            self._extend(other.first, other.last)

    def _extend(self, first: logging.LogRecord, last: logging.LogRecord) -> None:
        # By the time they were logged: records are lost out of order (a full queue drops
        # the newest first, a close the oldest).
        if self.first is None or first.created < self.first.created:
            self.first = first
        if self.last is None or last.created >= self.last.created:
            self.last = last

    def _level_counts(self) -> str:
        return ", ".join(f"{n} {name}" for name, n in sorted(self.levels.items()))

    def summary(self) -> str:
        """One paragraph describing the held-back records."""
        lines = [
            f"{self.count} more records were held back by the rate limit ({self._level_counts()})."
        ]
        if self.first is not None:
            lines.append(
                f"First: {self.first.levelname} {self.first.name}: {self.first.getMessage()}"
            )
        if self.last is not None and self.last is not self.first:
            lines.append(f"Last: {self.last.levelname} {self.last.name}: {self.last.getMessage()}")
        return "\n".join(lines)

    def describe(self) -> str:
        """Describe the records in one line: levels, first and last message (first lines)."""
        text = self._level_counts()
        for label, record in (("first", self.first), ("last", self.last)):
            if record is not None and (label == "first" or record is not self.first):
                line = record.getMessage().split("\n", 1)[0]
                line = line if len(line) <= 80 else line[:77] + "..."
                text += f"; {label}: {record.levelname} {record.name}: {line}"
        return text


DEFAULT_CLOSE_TIMEOUT = 10.0
"""Seconds ``close()`` waits for a sink that names no ``timeout`` of its own."""


class Courier(logging.handlers.QueueListener):
    """The worker of one sink: takes records from its bounded queue and delivers them.

    Every record given to a courier ends in exactly one of its counters: ``delivered``,
    ``dropped`` (lost, and said so on stderr), ``held_back`` (for the rate limit's
    digest) or ``pending`` (queued or being sent). Closing waits at most one timeout; what
    is then still undelivered is dropped and said in one line, with the count.

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
        self._lost = HeldBack()
        # Counters and the held/lost tallies change in the worker and in close().
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._failing = False
        self._last_error = ""
        self._overflowing = False
        self._sentinel_queued = False
        self._digest_in_flight = 0
        self._closing = False
        self._closed = False
        self._abandoned = False
        self._late_said = False
        self._progress = 0
        self._stall: tuple[int, float] | None = None
        self._stop_began = 0.0
        self.delivered = 0
        """Records delivered, one by one or summed up in a digest."""

    @property
    def dropped(self) -> int:
        """Records lost: queue full, the sink failed, or still undelivered at close."""
        return self._lost.count

    @property
    def pending(self) -> int:
        """Records queued or being delivered: neither delivered nor dropped yet."""
        # The stop sentinel waits in the queue too, and is no record.
        return self._records.unfinished_tasks - self._sentinel_queued

    @property
    def held_back(self) -> int:
        """Records held back by the rate limit, to be summed up in the next digest."""
        return self._held.count + self._digest_in_flight

    @property
    def closed(self) -> bool:
        """True once :meth:`stop` has run: records given now are dropped."""
        return self._closing

    def start_thread(self) -> None:
        """Start the worker thread unless it runs; a no-op once closed."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._start_lock:
            if self._closing or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = None
            self.start()
            self._name_thread()

    def submit(self, record: logging.LogRecord) -> None:
        """Queue a prepared ``record``, starting the thread on first use; never blocks."""
        if self._closing:
            self._lose_late(record, "closed: dropping the records given after close")
            return
        thread = self._thread
        if thread is None or not thread.is_alive():
            # Started lazily: a handler that is built but never used costs no thread.
            try:
                self.start_thread()
            except RuntimeError as error:  # no new threads while the interpreter exits
                self._lose_late(record, f"cannot deliver: no worker thread ({error})")
                return
        try:
            self._records.put_nowait(record)
        except queue.Full:
            with self._lock:
                self._lost.add(record)
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

    def _lose_late(self, record: logging.LogRecord, text: str) -> None:
        with self._lock:
            self._lost.add(record)
            said, self._late_said = self._late_said, True
        if not said:
            self._report(text)

    def _name_thread(self) -> None:
        # Named after the sink, for py-spy and thread dumps; QueueListener leaves it unnamed.
        if self._thread is not None:
            self._thread.name = f"lab-log {self.name}"

    def flush(self, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> bool:
        """Wait until every queued record was handled; False when ``timeout`` ran out."""
        start = time.monotonic()
        progress = self._progress
        deadline = start + timeout
        with self._records.all_tasks_done:
            while self._records.unfinished_tasks - self._sentinel_queued > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._records.all_tasks_done.wait(remaining)
            else:
                return True
        if self._progress == progress:
            # Stuck all along: a close() right after (logging.shutdown calls flush, then
            # close) counts this wait against its own instead of waiting as long again.
            stall = self._stall
            before = stall[1] if stall is not None and stall[0] == progress else 0.0
            self._stall = (progress, before + time.monotonic() - start)
        return False

    def begin_stop(self) -> None:
        """Take no more records and ask the thread to end after what is queued.

        Returns at once; :meth:`stop` then waits. Calling this on several couriers first
        lets them drain side by side.
        """
        with self._start_lock:
            if not self._closing:
                self._closing = True
                self._stop_began = time.monotonic()
        thread = self._thread
        if thread is None or not thread.is_alive() or self._sentinel_queued:
            return
        # Set first: the thread may take the sentinel as soon as it is in.
        self._sentinel_queued = True
        try:
            self._records.put_nowait(_SENTINEL)
        except queue.Full:
            self._sentinel_queued = False  # stop() retries until its deadline

    def stop(self, timeout: float = DEFAULT_CLOSE_TIMEOUT, deadline: float | None = None) -> None:
        """Deliver what is queued, waiting at most ``timeout`` seconds, then stop the thread.

        When the sink has not finished by then, the records still queued or held back are
        dropped and the thread is left to end its current attempt alone (a daemon, it
        ends with the process). Either way one line on stderr says what the sink could
        not deliver, if anything. A second call returns at once.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the queue to drain, counting a :meth:`flush` that just
            waited in vain on the same stuck record.
        deadline : float, optional
            The :func:`time.monotonic` time to stop waiting at, instead of ``timeout``
            from now (to close several sinks side by side); ``timeout`` then only names
            the budget in the report.
        """
        self.begin_stop()
        if self._closed:
            return
        self._closed = True
        start = self._stop_began
        budget = timeout
        if deadline is None:
            deadline = start + timeout
            stall = self._stall
            if stall is not None and stall[0] == self._progress:
                deadline -= min(timeout, stall[1])
        thread = self._thread
        if thread is not None and thread.is_alive():
            if not self._sentinel_queued:
                self._sentinel_queued = True
                try:
                    self._records.put(_SENTINEL, timeout=max(0.0, deadline - time.monotonic()))
                except queue.Full:
                    self._sentinel_queued = False
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self._report(self._abandon(budget))
                return
            self._thread = None
        with self._lock:
            if self._lost.count:
                self._report(f"closed; {self._lost_text()}{self._failure_text()}")

    def _lost_text(self) -> str:
        # Called with the lock held.
        return f"{self._lost.count} records not delivered are lost ({self._lost.describe()})"

    def _failure_text(self) -> str:
        # Called with the lock held.
        return f"; last failure: {self._last_error}" if self._last_error else ""

    def _abandon(self, budget: float) -> str:
        """Drop what the stuck worker still holds; return the line that says so."""
        with self._lock:
            # From now on the worker ends its current attempt and sends nothing more.
            self._abandoned = True
        drained = HeldBack()
        while True:
            try:
                item = self._records.get_nowait()
            except queue.Empty:
                break
            if item is not _SENTINEL:
                drained.add(item)
            self._records.task_done()
        with self._lock:
            held, self._held = self._held, HeldBack()
            self._lost.merge(drained)
            self._lost.merge(held)
            # One snapshot: what the line says adds up even as the attempt under way ends.
            being_sent = self._records.unfinished_tasks + self._digest_in_flight
            text = f"closed: the sink did not finish within its timeout ({budget:.3g} s)"
            if self._lost.count:
                text += f"; {self._lost_text()}"
            parts = [f"{drained.count} still queued"] if drained.count else []
            parts += [f"{held.count} held back for a digest"] if held.count else []
            if parts:
                text += f"; of them {' and '.join(parts)} when it closed"
            if being_sent:
                text += (
                    f"; {being_sent} more still being sent, lost unless that attempt ends"
                    " before the process exits"
                )
            text += self._failure_text()
        # The worker takes this after its attempt and ends.
        self._sentinel_queued = True
        try:
            self._records.put_nowait(_SENTINEL)
        except queue.Full:
            self._sentinel_queued = False
        return text

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
        with self._lock:
            if self._abandoned:
                # close() gave up on this sink and counted this record as lost.
                self._lost.add(record)
                return
            if not self._rate.allow(now):
                self._held.add(record)
                return
        self._attempt(lambda: self._deliver(record), record)

    def _send_digest(self) -> None:
        with self._lock:
            held = self._held
            if not held.count:
                return
            # Taken out now: while the digest is under way its records count as held back
            # through _digest_in_flight, and close() cannot count them twice.
            self._held = HeldBack()
            self._digest_in_flight = held.count
        digest, last = self._digest, held.last
        try:
            if digest is None or last is None:
                with self._lock:
                    self._lost.merge(held)
            else:
                # The records summed up count as delivered (or lost) with their digest.
                self._attempt(lambda: digest(held.summary(), last), held)
        finally:
            self._digest_in_flight = 0

    def _attempt(self, action: Callable[[], object], records: logging.LogRecord | HeldBack) -> None:
        try:
            action()
        except Exception as exc:
            with self._lock:
                if isinstance(records, HeldBack):
                    self._lost.merge(records)
                else:
                    self._lost.add(records)
                self._progress += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                # After close() gave up, its one line has said it all.
                say = not self._failing and not self._abandoned
                self._failing = True
            if say:
                self._report(
                    f"cannot deliver: {self._last_error}; dropping records until it recovers"
                )
        else:
            with self._lock:
                self.delivered += records.count if isinstance(records, HeldBack) else 1
                self._progress += 1
                say = self._failing and not self._abandoned
                self._failing = False
            if say:
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
        _OPEN.add(self)

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

    @property
    def close_timeout(self) -> float:
        """Seconds :meth:`close` and :meth:`flush` wait: the handler's own ``timeout``."""
        return float(getattr(self, "timeout", None) or DEFAULT_CLOSE_TIMEOUT)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued record was handled, at most ``timeout`` seconds.

        Parameters
        ----------
        timeout : float, optional
            Defaults to :attr:`close_timeout`.
        """
        self._courier.flush(self.close_timeout if timeout is None else timeout)

    def close(self, timeout: float | None = None, deadline: float | None = None) -> None:
        """Deliver what is queued, waiting at most ``timeout`` seconds, then close.

        What the sink has not delivered by then is dropped and said in one line on
        stderr (see :meth:`Courier.stop`); closing again returns at once.

        Parameters
        ----------
        timeout : float, optional
            Defaults to :attr:`close_timeout`, the handler's own ``timeout``.
        deadline : float, optional
            A :func:`time.monotonic` time to stop waiting at instead (see
            :func:`close_sinks`).
        """
        self._courier.stop(self.close_timeout if timeout is None else timeout, deadline)
        super().close()


_OPEN: weakref.WeakSet[QueuedDelivery] = weakref.WeakSet()
"""Network handlers with a courier, for closing at exit side by side."""


def close_sinks(
    sinks: Iterable[QueuedDelivery], timeout: float | None = None, since: float | None = None
) -> None:
    """Close network handlers side by side: the whole takes at most the longest timeout.

    Each sink first stops taking records and is told to finish, then each is waited for
    until its own deadline: ``timeout`` (default: its :attr:`~QueuedDelivery.close_timeout`)
    from the moment this function was called. Sinks that hang therefore cost one timeout
    in all, not one each.

    Parameters
    ----------
    sinks : iterable of QueuedDelivery
        The handlers to close.
    timeout : float, optional
        Seconds each may take; defaults to each handler's own timeout.
    since : float, optional
        The :func:`time.monotonic` time the timeouts count from; now by default.
    """
    start = time.monotonic() if since is None else since
    sinks = list(sinks)
    for sink in sinks:
        sink.courier.begin_stop()
    for sink in sinks:
        budget = sink.close_timeout if timeout is None else timeout
        sink.close(budget, deadline=start + budget)


def _close_open_sinks() -> None:
    # At exit, before logging.shutdown (registered earlier, so run later), which would
    # flush and close each handler in turn, one timeout after another.
    close_sinks([sink for sink in list(_OPEN) if not sink.courier.closed])


atexit.register(_close_open_sinks)


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

    def stop(self, deadline: float | None = None) -> bool:  # type: ignore[override]
        """Hand over what is queued and end the thread, waiting until ``deadline`` at most.

        A console or file that blocks (a full pipe, a stopped terminal) would otherwise
        hold ``close()``, and the process's exit, for ever; the records it did not get to
        are said on stderr.

        Returns
        -------
        bool
            False when the thread is still stuck in a local sink.
        """
        thread = self._thread
        if thread is None:
            return True
        self.enqueue_sentinel()
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if not thread.is_alive():
            self._thread = None
            return True
        waiting = self.queue.qsize() if isinstance(self.queue, queue.SimpleQueue) else 0
        try:
            sys.stderr.write(
                "lab_utils.custom_logging: console and file: closed while their thread is"
                f" stuck writing; {max(0, waiting - 1)} records it had not handled yet"
                " are lost, for the network sinks too\n"
            )
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        return False


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
        """Start the thread that feeds every sink, and the network sinks' threads."""
        if self._level is not None and not self._started:
            self._listener.start()
            self._started = True
            # Now, not on their first record: that may come at interpreter exit, when
            # no thread can be started any more and the record would be lost.
            for sink in self.queued:
                sink.courier.start_thread()

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

    def close(self, timeout: float | None = None) -> None:
        """Hand over what is queued, stop the thread, close every sink (draining them).

        The whole waits at most one timeout: the longest of the network sinks' own (see
        :func:`close_sinks`), or :data:`DEFAULT_CLOSE_TIMEOUT` without network sinks.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait in all, instead of the sinks' own timeouts.
        """
        start = time.monotonic()
        budgets = [sink.close_timeout for sink in self.queued]
        budget = timeout if timeout is not None else max(budgets, default=DEFAULT_CLOSE_TIMEOUT)
        finished = True
        if self._started:
            finished = self._listener.stop(start + budget)
            self._started = False
        if finished:
            # A stuck thread holds the lock of the sink it writes: closing that sink
            # would wait for it, so the local sinks are then left as they are.
            for handler in self.local:
                handler.close()
        close_sinks(self.queued, timeout, since=start)
        super().close()
