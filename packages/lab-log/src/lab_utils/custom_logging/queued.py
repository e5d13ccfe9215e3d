"""The part every network handler shares: ``emit`` queues, a :class:`Courier` delivers."""

from __future__ import annotations

import copy
import logging

from lab_utils.custom_logging.background import Courier, RateLimit


class QueuedDelivery(logging.Handler):
    """Base of the network handlers: ``emit`` returns at once, a worker thread delivers.

    Subclasses implement :meth:`deliver` (one record) and may implement
    :meth:`deliver_digest` (the summary of records held back by the rate limit).
    Call :meth:`start_courier` at the end of ``__init__``.
    """

    _courier: Courier

    def start_courier(
        self, name: str, rate_limit: int = 0, rate_period: float = 60.0, capacity: int = 10_000
    ) -> None:
        """Create this handler's courier.

        Parameters
        ----------
        name : str
            Names the sink in failure reports.
        rate_limit : int, optional
            At most this many messages per ``rate_period`` seconds; 0 (default) for no limit.
        rate_period : float, optional
            Length of the rate-limit window in seconds.
        capacity : int, optional
            Records the queue holds before new ones are dropped.
        """
        self._courier = Courier(
            name,
            self.deliver,
            self.deliver_digest,
            capacity=capacity,
            rate_limit=RateLimit(rate_limit, rate_period),
        )

    @property
    def courier(self) -> Courier:
        """The courier delivering for this handler (counters ``delivered`` and ``dropped``)."""
        return self._courier

    def deliver(self, record: logging.LogRecord) -> None:
        """Send one record; runs in the worker thread and raises on failure."""
        raise NotImplementedError

    def deliver_digest(self, text: str, last: logging.LogRecord) -> None:
        """Send the summary of held-back records; by default as a record like ``last``."""
        summary = copy.copy(last)
        summary.msg, summary.args, summary.exc_info, summary.exc_text = text, None, None, None
        self.deliver(summary)

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record`` for the worker thread and return at once.

        Parameters
        ----------
        record : logging.LogRecord
            The record to send.
        """
        try:
            # Freeze the text now: the arguments may change after the call returns.
            frozen = copy.copy(record)
            frozen.msg, frozen.args = record.getMessage(), None
            if record.exc_info:
                frozen.exc_text = record.exc_text or logging.Formatter().formatException(
                    record.exc_info
                )
                frozen.exc_info = None
            self._courier.submit(frozen)
        except Exception:
            self.handleError(record)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait (at most ``timeout`` seconds) until every queued record was handled."""
        self._courier.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, waiting at most ``timeout`` seconds, then close."""
        self._courier.close(timeout)
        super().close()
