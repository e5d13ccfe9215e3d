"""Progress of long work: a bar with rate and ETA on a terminal, a line now and then off it."""

from __future__ import annotations

import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Report ``done`` out of ``total`` items to ``stream``.

    On a terminal the bar is redrawn in place at most every ``redraw`` seconds. Off a
    terminal (a log file, the journal) a plain line goes out at most every ``every``
    seconds, so short work stays quiet and long work is not a carriage-return storm.

    Parameters
    ----------
    total : int
        Items to do.
    stream : text stream
        Where to write (standard error).
    unit : str, optional
        What an item is called.
    """

    def __init__(
        self,
        total: int,
        stream: TextIO,
        unit: str = "rows",
        *,
        redraw: float = 0.2,
        every: float = 10.0,
    ) -> None:
        self.total = total
        self.stream = stream
        self.unit = unit
        self.terminal = stream.isatty()
        self.interval = redraw if self.terminal else every
        self.started = time.monotonic()
        self._next = self.started + self.interval
        self.done = 0

    def _text(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        share = self.done / self.total if self.total else 1.0
        if self.done >= self.total:
            tail = f"in {_duration(elapsed)}"
        else:
            tail = f"ETA {_duration((self.total - self.done) / rate)}" if rate else "ETA ?"
        counts = f"{self.done}/{self.total} {self.unit} {share:4.0%}  {rate:,.0f} {self.unit}/s"
        if not self.terminal:
            return f"{counts}  {tail}\n"
        filled = int(share * 30)
        return f"\r[{'#' * filled}{'.' * (30 - filled)}] {counts}  {tail}\033[K"

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more items done; report when the interval has passed."""
        self.done += count
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            self.stream.write(self._text(now))
            self.stream.flush()

    def finish(self) -> None:
        """Draw the final state on a terminal; off a terminal the caller's summary suffices."""
        if self.terminal:
            self.stream.write(self._text(time.monotonic()) + "\n")
            self.stream.flush()
