"""Daily log files named ``<basename>_<YYYY-MM-DD><extension>``."""

from __future__ import annotations

import datetime as dt
import logging
import logging.handlers
import os
import time

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO


class CustomTimedRotatingFileHandler(logging.handlers.TimedRotatingFileHandler):
    """Variation of :class:`~logging.handlers.TimedRotatingFileHandler` with one file a day.

    Each record goes to the file of the (local) day it was created on,
    ``<path>/<basename>_<YYYY-MM-DD><extension>``. The day is taken from the record's own
    timestamp, so a record is never lost or misfiled at midnight, and daylight-saving
    changes need no special case. Nothing is ever deleted.

    Parameters
    ----------
    path : str
        Parent directory of all log files; created when missing (``~`` is expanded).
    basename : str
        File base name the date is appended to, without extension.
    extension : str, optional
        File extension including the dot, default ``'.log'``.

    Raises
    ------
    OSError
        The directory could not be created; the handler must not be used.
    """

    path: str
    """Parent directory to save all logs."""
    basename: str
    """Complete file base name (directory included) the date is appended to."""
    extension: str
    """Log file extension."""
    rolloverAt: int  # noqa: N815 - the stdlib attribute name
    """Time (seconds since the epoch) of the next local midnight after the current file's day."""
    stream: TextIO | None  # type: ignore[assignment]
    """File stream (``None`` until the first record: files are opened lazily)."""

    def __init__(self, path: str, basename: str, extension: str = ".log") -> None:
        # os.path, not pathlib, in modules imported with the package: it costs milliseconds.
        directory = os.path.abspath(os.path.expanduser(path))  # noqa: PTH100, PTH111
        os.makedirs(directory, exist_ok=True)  # noqa: PTH103
        self.path = directory
        self.basename = os.path.join(directory, basename)  # noqa: PTH118
        self.extension = extension
        self._day = dt.date.today()
        super().__init__(
            filename=self._file_name(self._day), when="midnight", delay=True, encoding="utf-8"
        )
        self.rolloverAt = self._next_midnight(self._day)

    def _file_name(self, day: dt.date) -> str:
        return f"{self.basename}_{day.isoformat()}{self.extension}"

    @staticmethod
    def _next_midnight(day: dt.date) -> int:
        # Local midnight of the next calendar day; mktime resolves DST, unlike now + 86400.
        following = day + dt.timedelta(days=1)
        return int(time.mktime((following.year, following.month, following.day, 0, 0, 0, 0, 0, -1)))

    def _switch_to(self, day: dt.date) -> None:
        if self.stream:
            self.stream.close()
            self.stream = None
        self._day = day
        self.baseFilename = self._file_name(day)
        self.rolloverAt = self._next_midnight(day)

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802 - stdlib name
        """Tell whether ``record`` belongs to another day's file than the open one.

        Parameters
        ----------
        record : logging.LogRecord
            The record about to be written.

        Returns
        -------
        bool
            True when the file must change before writing.
        """
        return dt.date.fromtimestamp(record.created) != self._day

    def doRollover(self) -> None:  # noqa: N802 - stdlib name
        """Switch to the file of today (local time); the next record opens it."""
        self._switch_to(dt.date.today())

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` to the file of the day it was created on.

        Parameters
        ----------
        record : logging.LogRecord
            The record to be written.
        """
        try:
            if self.shouldRollover(record):
                self._switch_to(dt.date.fromtimestamp(record.created))
            logging.FileHandler.emit(self, record)
        except Exception:
            self.handleError(record)
