"""Logging for lab daemons: colour console, daily JSON files, alarm socket, e-mail, Slack.

Part of the lab-utils suite; distribution ``lab-log``. Standard library only.
"""

from __future__ import annotations

from lab_utils.custom_logging.__about__ import __version__
from lab_utils.custom_logging.alarm import (
    DEFAULT_ALARM_PORT,
    AlarmListener,
    NonPickledSocketHandler,
    parse_alarms,
)
from lab_utils.custom_logging.config import configure_logging, shutdown_logging
from lab_utils.custom_logging.console import colour_wanted, console_handler
from lab_utils.custom_logging.daily_file import CustomTimedRotatingFileHandler
from lab_utils.custom_logging.formatters import (
    ColoredFormatter,
    JournalFormatter,
    JsonLineFormatter,
)
from lab_utils.custom_logging.levels import ConfigError, LevelError, OptionValueError, parse_level
from lab_utils.custom_logging.logger import SUCCESS, CustomLogger, getLogger
from lab_utils.custom_logging.mail import TlsSMTPHandler
from lab_utils.custom_logging.options import string_to_bool
from lab_utils.custom_logging.slack import SlackError, SlackHandler

__all__ = [
    "APP_NAME",
    "DEFAULT_ALARM_PORT",
    "SUCCESS",
    "AlarmListener",
    "ColoredFormatter",
    "ConfigError",
    "CustomLogger",
    "CustomTimedRotatingFileHandler",
    "JournalFormatter",
    "JsonLineFormatter",
    "LevelError",
    "NonPickledSocketHandler",
    "OptionValueError",
    "SlackError",
    "SlackHandler",
    "TlsSMTPHandler",
    "__version__",
    "colour_wanted",
    "configure_logging",
    "console_handler",
    "getLogger",
    "parse_alarms",
    "parse_level",
    "shutdown_logging",
    "string_to_bool",
]


def __getattr__(name: str) -> str:
    # APP_NAME changes with every configure_logging: read it from its module at each
    # access, never a copy taken at import that goes stale.
    if name == "APP_NAME":
        from lab_utils.custom_logging import logger

        return logger.APP_NAME
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
