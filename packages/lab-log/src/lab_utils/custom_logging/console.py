"""The console handler: colour on terminals only, a journal-friendly layout under systemd.

One rule for every console of the suite (``configure_logging`` and the alarm console):
``NO_COLOR`` (set and not empty) means no ANSI codes at all; otherwise an explicit choice
(``use_coloured_output`` in the INI file) is followed; otherwise ``FORCE_COLOR`` (set and
not empty) colours; otherwise colour goes to terminals only, never to pipes, files or the
journal.
"""

from __future__ import annotations

import logging
import os
import sys

from lab_utils.custom_logging.formatters import (
    COLOURED_FORMAT,
    DATE_FORMAT,
    PLAIN_FORMAT,
    ColoredFormatter,
    JournalFormatter,
)

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False  # closed, or not a file at all


def colour_wanted(stream: TextIO, requested: bool | None = None) -> bool:
    """Tell whether records written to ``stream`` should carry ANSI colour codes.

    Parameters
    ----------
    stream : file object
        Where the records go.
    requested : bool, optional
        An explicit choice, e.g. ``use_coloured_output`` written in the INI file; None
        when the user said nothing.

    Returns
    -------
    bool
        False when ``NO_COLOR`` is set; else ``requested`` when given; else True when
        ``FORCE_COLOR`` is set or ``stream`` is a terminal.
    """
    if os.environ.get("NO_COLOR"):
        return False
    if requested is not None:
        return requested
    if os.environ.get("FORCE_COLOR"):
        return True
    return _is_terminal(stream)


def writes_to_journal(stream: TextIO) -> bool:
    """Tell whether ``stream`` is the systemd journal's stream for this process.

    systemd sets ``JOURNAL_STREAM`` to ``<device>:<inode>`` of the stream it connected to
    stdout/stderr; a stream redirected elsewhere (a file, a pipe to another program) does
    not match, as systemd's documentation asks.

    Parameters
    ----------
    stream : file object
        The console handler's stream.

    Returns
    -------
    bool
        True when the stream's file is the one ``JOURNAL_STREAM`` names.
    """
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return False  # no file descriptor: not the journal
    return expected == f"{info.st_dev}:{info.st_ino}"


def console_handler(
    stream: TextIO | None = None,
    level: int = logging.NOTSET,
    colour: bool | None = None,
    journal_format: bool = False,
) -> logging.StreamHandler[TextIO]:
    """Build a console handler following the colour and journal rules.

    Parameters
    ----------
    stream : file object, optional
        Where to write; standard output by default (as in 0.4).
    level : int, optional
        The handler's level.
    colour : bool, optional
        An explicit colour choice (see :func:`colour_wanted`); None follows the terminal.
    journal_format : bool, optional
        When the stream is the systemd journal (:func:`writes_to_journal`), write
        :class:`~lab_utils.custom_logging.formatters.JournalFormatter` lines: a priority
        prefix, no timestamp (the journal adds one), no colour.

    Returns
    -------
    logging.StreamHandler
        The handler.
    """
    target = stream if stream is not None else sys.stdout
    handler = logging.StreamHandler(target)
    handler.setLevel(level)
    formatter: logging.Formatter
    if journal_format and writes_to_journal(target):
        formatter = JournalFormatter()
    elif colour_wanted(target, colour):
        formatter = ColoredFormatter(fmt=COLOURED_FORMAT, datefmt=DATE_FORMAT)
    else:
        formatter = logging.Formatter(fmt=PLAIN_FORMAT, datefmt=DATE_FORMAT)
    handler.setFormatter(formatter)
    return handler
