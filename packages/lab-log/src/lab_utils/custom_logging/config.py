"""``configure_logging``: the handlers of an INI file behind one queue, set up idempotently.

The caller's thread only puts records in a queue; a listener thread formats them and
writes console and file; network handlers (alarm, mail, Slack) each deliver from their own
thread. Sections and options are those of lab_utils 0.4 (see the configuration reference
in the docs); new options are all optional.
"""

from __future__ import annotations

import atexit
import configparser
import logging
import logging.handlers
import queue
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab_utils.custom_logging import logger as _logger
from lab_utils.custom_logging.alarm import DEFAULT_ALARM_PORT, NonPickledSocketHandler
from lab_utils.custom_logging.daily_file import CustomTimedRotatingFileHandler
from lab_utils.custom_logging.formatters import (
    ALARM_FORMAT,
    COLOURED_FORMAT,
    DATE_FORMAT,
    MAIL_FORMAT,
    PLAIN_FORMAT,
    SLACK_FORMAT,
    ColoredFormatter,
    JsonLineFormatter,
)
from lab_utils.custom_logging.levels import ConfigError, LevelError, parse_level
from lab_utils.custom_logging.logger import SUCCESS, CustomLogger, getLogger
from lab_utils.custom_logging.mail import TlsSMTPHandler, read_credentials
from lab_utils.custom_logging.slack import SLACK_API_URL, SlackHandler

log = logging.getLogger(__name__)

TRUE_STRINGS = ("true", "1", "t", "y", "yes", "on")
"""What :func:`string_to_bool` reads as true (any case)."""

DEFAULT_RATE_LIMIT = 10
"""Mail and Slack send at most this many messages per ``rate_period`` (60 s) by default."""


def string_to_bool(s: str) -> bool:
    """Parse a variety of strings (e.g. ``'true'`` or ``'1'``) to a boolean.

    Parameters
    ----------
    s : str
        The string to parse.

    Returns
    -------
    bool
        True if ``s`` is one of ``true``, ``1``, ``t``, ``y``, ``yes``, ``on`` (any case).
    """
    return s.strip().lower() in TRUE_STRINGS


class _Setup:
    """What the last ``configure_logging`` installed, so that the next call replaces it."""

    queue_handler: logging.handlers.QueueHandler | None = None
    listener: logging.handlers.QueueListener | None = None
    handlers: tuple[logging.Handler, ...] = ()
    fallback: logging.Handler | None = None


def _option(config: configparser.ConfigParser, section: str, option: str) -> str:
    try:
        return config.get(section, option)
    except configparser.Error as error:
        raise ConfigError(f"[{section}] {option} is missing") from error


def _level(config: configparser.ConfigParser, section: str, default: str) -> int:
    return parse_level(config.get(section, "log_level", fallback=default), f"[{section}] log_level")


def _active(config: configparser.ConfigParser, section: str, default: str) -> bool:
    return string_to_bool(config.get(section, "active", fallback=default))


def console_handler(config: configparser.ConfigParser) -> logging.Handler | None:
    """Build the ``[ConsoleLogger]`` handler (stdout); None when inactive."""
    if not _active(config, "ConsoleLogger", "1"):
        return None
    handler = logging.StreamHandler(sys.stdout)
    handler.setLevel(_level(config, "ConsoleLogger", "INFO"))
    if string_to_bool(config.get("ConsoleLogger", "use_coloured_output", fallback="1")):
        handler.setFormatter(ColoredFormatter(fmt=COLOURED_FORMAT, datefmt=DATE_FORMAT))
    else:
        handler.setFormatter(logging.Formatter(fmt=PLAIN_FORMAT, datefmt=DATE_FORMAT))
    return handler


def file_handler(config: configparser.ConfigParser) -> logging.Handler | None:
    """Build the ``[FileLogger]`` daily JSON file handler; None when inactive."""
    if not _active(config, "FileLogger", "0"):
        return None
    level = _level(config, "FileLogger", "INFO")
    handler = CustomTimedRotatingFileHandler(
        path=_option(config, "FileLogger", "log_path"),
        basename=_option(config, "FileLogger", "log_basename"),
        extension=config.get("FileLogger", "log_extension", fallback=".log"),
    )
    handler.setLevel(level)
    handler.setFormatter(JsonLineFormatter())
    return handler


def alarm_handler(config: configparser.ConfigParser) -> logging.Handler | None:
    """Build the ``[AlarmLogger]`` handler; None when inactive."""
    if not _active(config, "AlarmLogger", "0"):
        return None
    text = config.get("AlarmLogger", "port", fallback="default").strip()
    if text == "default":
        port = DEFAULT_ALARM_PORT
    elif text.isdigit() and 0 < int(text) < 65536:
        port = int(text)
    else:
        raise ConfigError(f"[AlarmLogger] port = {text!r}: use 'default' (9020) or 1-65535")
    level = _level(config, "AlarmLogger", "WARNING")
    handler = NonPickledSocketHandler(
        host=config.get("AlarmLogger", "host", fallback="localhost"),
        port=port,
        timeout=config.getfloat("AlarmLogger", "timeout", fallback=5.0),
    )
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(fmt=ALARM_FORMAT, datefmt=DATE_FORMAT))
    return handler


def _delivery_options(config: configparser.ConfigParser, section: str) -> dict[str, Any]:
    """Read the options mail and Slack share: CA file, timeout and rate limit."""
    return {
        "ca_file": config.get(section, "ca_file", fallback=None),
        "timeout": config.getfloat(section, "timeout", fallback=10.0),
        "rate_limit": config.getint(section, "rate_limit", fallback=DEFAULT_RATE_LIMIT),
        "rate_period": config.getfloat(section, "rate_period", fallback=60.0),
    }


def mail_handler(config: configparser.ConfigParser) -> logging.Handler | None:
    """Build the ``[MailHandler]`` handler; None when inactive."""
    section = "MailHandler"
    if not _active(config, section, "0"):
        return None
    level = _level(config, section, "WARNING")
    recipients = [r.strip() for r in _option(config, section, "recipients").splitlines()]
    handler = TlsSMTPHandler(
        mailhost=(
            _option(config, section, "mail_host"),
            config.getint(section, "port", fallback=0),
        ),
        fromaddr=_option(config, section, "sender"),
        toaddrs=[r for r in recipients if r],
        subject=_option(config, section, "subject"),
        credentials=(
            read_credentials(config.get(section, "credentials_file"))
            if config.has_option(section, "credentials_file")
            else None
        ),
        security=config.get(section, "security", fallback="starttls").strip().lower(),
        **_delivery_options(config, section),
    )
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(fmt=MAIL_FORMAT, datefmt=DATE_FORMAT))
    return handler


def slack_handler(config: configparser.ConfigParser) -> logging.Handler | None:
    """Build the ``[SlackLogger]`` handler; None when inactive."""
    section = "SlackLogger"
    if not _active(config, section, "0"):
        return None
    level = _level(config, section, "SUCCESS")
    webhook = config.get(section, "webhook_url", fallback=None)
    token = None
    if webhook is None:
        api_file = Path(_option(config, section, "api_file")).expanduser()
        token = api_file.read_text(encoding="utf-8").rstrip()
    handler = SlackHandler(
        webhook_url=webhook,
        token=token,
        channel=config.get(section, "channel", fallback=None),
        username=config.get(section, "user", fallback=None),
        api_url=config.get(section, "api_url", fallback=SLACK_API_URL),
        **_delivery_options(config, section),
    )
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(fmt=SLACK_FORMAT, datefmt=DATE_FORMAT))
    return handler


# Built in this order, as in 0.4. A failing file, mail or Slack section disables only
# that handler (as in 0.4); an invalid level or alarm port fails the whole setup.
_BUILDERS: tuple[
    tuple[str, Callable[[configparser.ConfigParser], logging.Handler | None], bool], ...
] = (
    ("console", console_handler, False),
    ("file", file_handler, True),
    ("alarm", alarm_handler, False),
    ("mail", mail_handler, True),
    ("Slack", slack_handler, True),
)


def build_handlers(
    config: configparser.ConfigParser, only: tuple[str, ...] | None = None
) -> tuple[list[logging.Handler], list[str]]:
    """Build the active handlers of ``config``.

    Parameters
    ----------
    config : configparser.ConfigParser
        The parsed logging file.
    only : tuple of str, optional
        Restrict to these handler kinds (``'console'``, ``'file'``, ``'alarm'``,
        ``'mail'``, ``'Slack'``).

    Returns
    -------
    tuple
        The handlers, and one warning text per handler that was disabled.

    Raises
    ------
    ConfigError
        An invalid level, or an invalid alarm section.
    """
    handlers: list[logging.Handler] = []
    warnings: list[str] = []
    for kind, build, may_disable in _BUILDERS:
        if only is not None and kind not in only:
            continue
        try:
            handler = build(config)
        except Exception as error:
            if not may_disable or isinstance(error, LevelError):
                raise
            warnings.append(f"{kind} handler disabled: {type(error).__name__}: {error}")
            continue
        if handler is not None:
            handlers.append(handler)
    return handlers, warnings


def read_config(config_file: str | Path | None) -> configparser.ConfigParser:
    """Parse ``config_file`` (``~`` expanded); None gives an empty configuration.

    Raises
    ------
    ConfigError
        When a file name was given and the file does not exist (0.4 silently ignored it).
    """
    config = configparser.ConfigParser()
    if config_file is not None:
        path = Path(config_file).expanduser().absolute()
        if not path.is_file():
            raise ConfigError(f"logging config file {path} not found")
        config.read(path, encoding="utf-8")
    return config


def _remove_previous() -> None:
    root = logging.getLogger()
    if _Setup.fallback is not None:
        root.removeHandler(_Setup.fallback)
        _Setup.fallback = None
    if _Setup.queue_handler is not None:
        root.removeHandler(_Setup.queue_handler)
    if _Setup.listener is not None:
        _Setup.listener.stop()
    for handler in _Setup.handlers:
        handler.close()
    _Setup.queue_handler, _Setup.listener, _Setup.handlers = None, None, ()


def shutdown_logging() -> None:
    """Flush and remove what :func:`configure_logging` installed (also run at exit)."""
    _remove_previous()


def configure_logging(
    config_file: str | None = None,
    fallback: bool = False,
    logger_name: str = "root",
    log_level: int | str | None = None,
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

    Returns
    -------
    CustomLogger
        The application logger.

    Raises
    ------
    configparser.Error
        (as :class:`ConfigError`) The file is missing or an option is invalid, unless
        ``fallback`` is True.
    """
    logging.setLoggerClass(CustomLogger)
    logging.addLevelName(SUCCESS, "SUCCESS")
    logging.SUCCESS = SUCCESS  # type: ignore[attr-defined]
    _logger.APP_NAME = logger_name
    _remove_previous()
    root = logging.getLogger()
    try:
        config = read_config(config_file)
        handlers, warnings = build_handlers(config)
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

    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    queue_handler = logging.handlers.QueueHandler(records)
    listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    root.addHandler(queue_handler)
    if handlers:
        root.setLevel(min(h.level for h in handlers))
    listener.start()
    _Setup.queue_handler, _Setup.listener, _Setup.handlers = (
        queue_handler,
        listener,
        tuple(handlers),
    )

    app = getLogger()
    if app_level is not None:
        app.setLevel(app_level)
    for text in warnings:
        log.warning(text)
    log.info("Logging system set up and running")
    log.debug("Active handlers: %s", ", ".join(type(h).__name__ for h in handlers) or "none")
    return app


atexit.register(shutdown_logging)
