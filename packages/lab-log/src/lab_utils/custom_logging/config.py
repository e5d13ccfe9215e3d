"""``configure_logging``: the sinks of an INI file behind one root handler, set up idempotently.

The caller's thread only freezes each record once and queues it (see
:class:`~lab_utils.custom_logging.delivery.Dispatcher`); a listener thread writes console
and file; network sinks (alarm, mail, Slack) each deliver from their own thread. Sections
and options are those of lab_utils 0.4 (see :mod:`~lab_utils.custom_logging.options`);
new options are all optional.
"""

from __future__ import annotations

import atexit
import configparser
import logging
import sys
from collections.abc import Callable

from lab_utils.custom_logging import logger as _logger
from lab_utils.custom_logging.alarm import (
    DEFAULT_ALARM_PORT,
    NonPickledSocketHandler,
    alarm_formatter,
)
from lab_utils.custom_logging.console import console_handler
from lab_utils.custom_logging.daily_file import CustomTimedRotatingFileHandler
from lab_utils.custom_logging.delivery import Dispatcher, QueuedDelivery
from lab_utils.custom_logging.formatters import (
    DATE_FORMAT,
    MAIL_FORMAT,
    SLACK_FORMAT,
    JsonLineFormatter,
)
from lab_utils.custom_logging.levels import OptionValueError, parse_level
from lab_utils.custom_logging.logger import SUCCESS, CustomLogger, getLogger
from lab_utils.custom_logging.mail import SECURITY_MODES, TlsSMTPHandler, read_credentials
from lab_utils.custom_logging.options import (
    TRUE_STRINGS,
    IniFile,
    Section,
    read_config,
    string_to_bool,
)
from lab_utils.custom_logging.slack import SLACK_API_URL, SlackHandler

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "TRUE_STRINGS",
    "build_handlers",
    "configure_logging",
    "read_config",
    "shutdown_logging",
    "string_to_bool",
]

log = logging.getLogger(__name__)

DEFAULT_RATE_LIMIT = 10
"""Mail and Slack send at most this many messages per ``rate_period`` (60 s) by default."""


class _Setup:
    """What the last ``configure_logging`` installed, so that the next call replaces it."""

    dispatcher: Dispatcher | None = None
    fallback: logging.Handler | None = None


def _console_sink(config: IniFile, journal_format: bool | None = None) -> logging.Handler | None:
    """Build the ``[ConsoleLogger]`` handler (stdout); None when inactive.

    Colour follows :func:`~lab_utils.custom_logging.console.colour_wanted`: a
    ``use_coloured_output`` written in the file is an explicit choice, its absence
    follows the terminal.
    """
    section = config.section("ConsoleLogger")
    if not section.active(True):
        return None
    journal = section.flag("journal_format", False) if journal_format is None else journal_format
    return console_handler(
        level=section.level("INFO"),
        colour=section.flag("use_coloured_output"),
        journal_format=bool(journal),
    )


def _file_sink(config: IniFile) -> logging.Handler | None:
    """Build the ``[FileLogger]`` daily JSON file handler; None when inactive."""
    section = config.section("FileLogger")
    if not section.active(False):
        return None
    level = section.level()
    handler = CustomTimedRotatingFileHandler(
        path=section.path("log_path"),
        basename=section.required("log_basename"),
        extension=section.required("log_extension"),
    )
    handler.setLevel(level)
    handler.setFormatter(JsonLineFormatter())
    return handler


def _alarm_sink(config: IniFile) -> logging.Handler | None:
    """Build the ``[AlarmLogger]`` handler; None when inactive."""
    section = config.section("AlarmLogger")
    if not section.active(False):
        return None
    port = section.port(default_word=("default", DEFAULT_ALARM_PORT))
    level = section.level()
    handler = NonPickledSocketHandler(
        host=section.text("host") or "localhost",
        port=port,
        timeout=section.number("timeout", 5.0),
    )
    handler.setLevel(level)
    handler.setFormatter(alarm_formatter())
    return handler


def _delivery_options(section: Section) -> dict[str, Any]:
    """Read the options mail and Slack share: CA file, timeout and rate limit."""
    return {
        "ca_file": section.text("ca_file"),
        "timeout": section.number("timeout", 10.0),
        "rate_limit": section.count("rate_limit", DEFAULT_RATE_LIMIT),
        "rate_period": section.number("rate_period", 60.0),
    }


def _mail_sink(config: IniFile) -> logging.Handler | None:
    """Build the ``[MailHandler]`` handler; None when inactive."""
    section = config.section("MailHandler")
    if not section.active(False):
        return None
    level = section.level()
    security = section.choice("security", SECURITY_MODES, "starttls")
    options = _delivery_options(section)
    recipients = [r.strip() for r in section.required("recipients").splitlines()]
    credentials = section.text("credentials_file")
    handler = TlsSMTPHandler(
        mailhost=(section.required("mail_host"), section.port()),
        fromaddr=section.required("sender"),
        toaddrs=[r for r in recipients if r],
        subject=section.required("subject"),
        credentials=read_credentials(credentials) if credentials else None,
        security=security,
        **options,
    )
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(fmt=MAIL_FORMAT, datefmt=DATE_FORMAT))
    return handler


def _slack_sink(config: IniFile) -> logging.Handler | None:
    """Build the ``[SlackLogger]`` handler; None when inactive."""
    section = config.section("SlackLogger")
    if not section.active(False):
        return None
    level = section.level()
    options = _delivery_options(section)
    webhook = section.text("webhook_url")
    token, channel = None, section.text("channel")
    if webhook is None:
        with open(section.path("api_file"), encoding="utf-8") as api_file:
            token = api_file.read().rstrip()
        channel = section.required("channel")
    handler = SlackHandler(
        webhook_url=webhook,
        token=token,
        channel=channel,
        username=section.text("user"),
        api_url=section.text("api_url") or SLACK_API_URL,
        **options,
    )
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(fmt=SLACK_FORMAT, datefmt=DATE_FORMAT))
    return handler


# Built in this order, as in 0.4. A file, mail or Slack sink that cannot start disables
# only that sink (as in 0.4); a value that does not parse, and any alarm problem, fails
# the whole setup.
_BUILDERS: tuple[tuple[str, Callable[[IniFile], logging.Handler | None], bool], ...] = (
    ("console", _console_sink, False),
    ("file", _file_sink, True),
    ("alarm", _alarm_sink, False),
    ("mail", _mail_sink, True),
    ("Slack", _slack_sink, True),
)


def build_handlers(
    config: configparser.ConfigParser,
    only: tuple[str, ...] | None = None,
    journal_format: bool | None = None,
) -> tuple[list[logging.Handler], list[str]]:
    """Build the active handlers of ``config``.

    Parameters
    ----------
    config : configparser.ConfigParser
        The parsed logging file (see :func:`read_config`).
    only : tuple of str, optional
        Restrict to these handler kinds (``'console'``, ``'file'``, ``'alarm'``,
        ``'mail'``, ``'Slack'``).
    journal_format : bool, optional
        Overrides ``[ConsoleLogger] journal_format``.

    Returns
    -------
    tuple
        The handlers, and the warning texts: one per unknown section or option, one per
        sink that was disabled.

    Raises
    ------
    OptionValueError
        A value that does not parse (a :class:`ConfigError`).
    configparser.NoOptionError
        The active ``[AlarmLogger]`` lacks ``port`` or ``log_level``.
    """
    if not isinstance(config, IniFile):
        parsed = IniFile()
        parsed.read_dict(config)
        config = parsed
    handlers: list[logging.Handler] = []
    warnings = config.unknown_names()
    for kind, build, may_disable in _BUILDERS:
        if only is not None and kind not in only:
            continue
        try:
            if build is _console_sink:
                handler = _console_sink(config, journal_format)
            else:
                handler = build(config)
        except Exception as error:
            if not may_disable or isinstance(error, OptionValueError):
                raise
            warnings.append(f"{kind} handler disabled: {type(error).__name__}: {error}")
            continue
        if handler is not None:
            handlers.append(handler)
    return handlers, warnings


def _remove_previous() -> None:
    root = logging.getLogger()
    if _Setup.fallback is not None:
        root.removeHandler(_Setup.fallback)
        _Setup.fallback = None
    if _Setup.dispatcher is not None:
        root.removeHandler(_Setup.dispatcher)
        _Setup.dispatcher.close()
        _Setup.dispatcher = None


def shutdown_logging() -> None:
    """Flush and remove what :func:`configure_logging` installed (also run at exit)."""
    _remove_previous()


def configure_logging(
    config_file: str | None = None,
    fallback: bool = False,
    logger_name: str = "root",
    log_level: int | str | None = None,
    journal_format: bool | None = None,
) -> CustomLogger:
    """Set up logging from an INI file: console, daily file, alarm socket, mail, Slack.

    Calling it again replaces the previous setup (no duplicate records). The root logger
    gets one queue handler and the lowest level any sink wants; other libraries' loggers
    keep their own levels.

    Parameters
    ----------
    config_file : str, optional
        The logging INI file; None gives console-only INFO logging.
    fallback : bool, optional
        When True and the file cannot be used, log to stderr with the stdlib defaults
        instead of raising.
    logger_name : str, optional
        The application logger's name, returned by :func:`getLogger` with no name.
    log_level : int or str, optional
        Level of the application logger (overrides nothing else).
    journal_format : bool, optional
        When True and the console is the systemd journal (``JOURNAL_STREAM``), write
        console lines without timestamp and colour, with a priority prefix the journal
        reads; overrides ``[ConsoleLogger] journal_format``.

    Returns
    -------
    CustomLogger
        The application logger.

    Raises
    ------
    configparser.Error
        (as :class:`ConfigError`) The file is missing or a value does not parse;
        (as :class:`configparser.NoOptionError`) the active ``[AlarmLogger]`` lacks an
        option 0.4 required; unless ``fallback`` is True.
    """
    logging.setLoggerClass(CustomLogger)
    logging.addLevelName(SUCCESS, "SUCCESS")
    logging.SUCCESS = SUCCESS  # type: ignore[attr-defined]
    _logger.APP_NAME = logger_name
    _remove_previous()
    root = logging.getLogger()
    try:
        config = read_config(config_file)
        handlers, warnings = build_handlers(config, journal_format=journal_format)
        app_level = parse_level(log_level, "log_level") if log_level is not None else None
    except Exception as error:
        if not fallback:
            raise
        # What logging.basicConfig() gives, but also when another handler is already there.
        stderr = logging.StreamHandler()
        stderr.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
        root.addHandler(stderr)
        _Setup.fallback = stderr
        if root.level == logging.NOTSET or root.level > logging.WARNING:
            root.setLevel(logging.WARNING)
        log.warning(
            "logging setup failed (%s: %s); default logger used", type(error).__name__, error
        )
        return getLogger()

    dispatcher = Dispatcher(
        local=[h for h in handlers if not isinstance(h, QueuedDelivery)],
        queued=[h for h in handlers if isinstance(h, QueuedDelivery)],
    )
    root.addHandler(dispatcher)
    if handlers:
        root.setLevel(min(h.level for h in handlers))
    dispatcher.start()
    _Setup.dispatcher = dispatcher

    app = getLogger()
    if app_level is not None:
        app.setLevel(app_level)
    for text in warnings:
        log.warning(text)
    if warnings and not any(h.level <= logging.WARNING for h in dispatcher.local):
        # No console or file shows warnings: a typo must not vanish, say it on stderr.
        for text in warnings:
            sys.stderr.write(f"lab_utils.custom_logging: {text}\n")
        sys.stderr.flush()
    log.info("Logging system set up and running")
    log.debug("Active handlers: %s", ", ".join(type(h).__name__ for h in handlers) or "none")
    return app


atexit.register(shutdown_logging)
