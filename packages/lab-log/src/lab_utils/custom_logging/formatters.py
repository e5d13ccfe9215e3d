"""Formatters: coloured and plain console layouts, the journal's, one JSON object per line."""

from __future__ import annotations

import logging

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
"""Every sink writes local time to the second, as in 0.4."""

COLOURED_FORMAT = "%(asctime)s  %(name)-20s %(module)-30s %(funcName)-25s %(message)s"
"""Console layout after the coloured level name."""

PLAIN_FORMAT = "%(levelname)-9s %(asctime)s  %(name)-20s %(module)-20s %(funcName)-20s %(message)s"
"""Console layout without colours (its widths differ from the coloured one, as in 0.4)."""

JOURNAL_FORMAT = "%(levelname)-9s %(name)s %(module)s %(funcName)s %(message)s"
"""Console layout under systemd: the journal adds the time and the process itself."""

MAIL_FORMAT = "%(asctime)s %(levelname)s %(name)s %(module)s %(funcName)s %(message)s"
"""Body of an alarm e-mail."""

SLACK_FORMAT = "%(asctime)s   %(levelname)s   %(name)s   %(module)s   %(funcName)s   %(message)s"
"""Text of a Slack message (three spaces between fields, as in 0.4)."""

JSON_KEYS = ("asctime", "levelname", "name", "module", "funcName", "message")
"""Keys of each line of the daily file, in order."""


class ColoredFormatter(logging.Formatter):
    """Console formatter that prepends the coloured severity level of the message.

    The level name is wrapped in an ANSI colour code and padded to 9 columns, then the
    message formatted by the ``fmt`` given (see :data:`COLOURED_FORMAT`).
    """

    colours: ClassVar[dict[str, int]] = {
        "black": 30,
        "red": 31,
        "green": 32,
        "yellow": 33,
        "blue": 34,
        "magenta": 35,
        "cyan": 36,
        "white": 37,
        "bgred": 41,
        "bggrey": 100,
    }
    """Terminal colour codes."""

    colour_map: ClassVar[dict[str, str]] = {
        "INFO": "cyan",
        "WARNING": "yellow",
        "ERROR": "red",
        "CRITICAL": "bgred",
        "EXCEPTION": "bgred",
        "DEBUG": "bggrey",
        "SUCCESS": "green",
    }
    """Colour mapping: level name to a key of :attr:`colours`."""

    prefix: ClassVar[str] = "\033["
    """Prefix to modify terminal output colour."""

    suffix: ClassVar[str] = "\033[0m"
    """Suffix to modify terminal output colour."""

    def format(self, record: logging.LogRecord) -> str:
        """Prepend a fixed-length, coloured header with the level name.

        Parameters
        ----------
        record : logging.LogRecord
            The record to be logged.

        Returns
        -------
        str
            The formatted message.
        """
        message = super().format(record)
        colour = self.colour_map.get(record.levelname, "white")
        code = self.colours.get(colour, self.colours["white"])
        header = f"{self.prefix}{code}m{record.levelname}{self.suffix}"
        return header + " " * max(0, 9 - len(record.levelname)) + message


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record with the keys of :data:`JSON_KEYS`.

    A traceback, when the record has one, is part of ``message`` (as in 0.4, where the
    queue merged it into the text before any sink saw it).
    """

    def __init__(self, datefmt: str = DATE_FORMAT) -> None:
        super().__init__(datefmt=datefmt)
        # Imported when a file sink is built, not with the package.
        import json

        self._dumps = json.dumps

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a single-line JSON object.

        Parameters
        ----------
        record : logging.LogRecord
            The record to be logged.

        Returns
        -------
        str
            The JSON text, without a trailing newline.
        """
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        if record.stack_info:
            message = f"{message}\n{self.formatStack(record.stack_info)}"
        fields = {
            "asctime": self.formatTime(record, self.datefmt),
            "levelname": record.levelname,
            "name": record.name,
            "module": record.module,
            "funcName": record.funcName,
            "message": message,
        }
        return self._dumps(fields, ensure_ascii=False)


class JournalFormatter(logging.Formatter):
    """Console layout for the systemd journal: a priority prefix, no timestamp, no colour.

    The journal stamps every line itself and reads a leading ``<N>`` as the syslog
    priority of the line (``SyslogLevelPrefix=``, on by default), so ``journalctl -p
    warning`` finds our warnings.
    """

    priorities: ClassVar[dict[int, int]] = {
        logging.CRITICAL: 2,
        logging.ERROR: 3,
        logging.WARNING: 4,
        25: 5,  # SUCCESS: syslog's "notice", good news worth a look
        logging.INFO: 6,
        logging.DEBUG: 7,
    }
    """Syslog priority of each level; a level in between takes the next lower level's."""

    def __init__(self, fmt: str = JOURNAL_FORMAT) -> None:
        super().__init__(fmt=fmt)

    def format(self, record: logging.LogRecord) -> str:
        """Return ``<priority>`` and the record in :data:`JOURNAL_FORMAT`.

        Parameters
        ----------
        record : logging.LogRecord
            The record to be logged.

        Returns
        -------
        str
            The formatted line.
        """
        priority = next(
            (
                p
                for level, p in sorted(self.priorities.items(), reverse=True)
                if record.levelno >= level
            ),
            7,
        )
        return f"<{priority}>{super().format(record)}"


def __getattr__(name: str) -> str:
    # ALARM_FORMAT lives with the rest of the alarm protocol; this name is kept for code
    # that imported it from here. Resolved lazily: the alarm module imports this one.
    if name == "ALARM_FORMAT":
        from lab_utils.custom_logging.alarm import ALARM_FORMAT

        return ALARM_FORMAT
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
