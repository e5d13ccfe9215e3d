"""Logging for lab daemons: colour console, daily JSON files, alarm socket, e-mail, Slack.

Part of the lab-utils suite; distribution ``lab-log``. Standard library only.
"""

from lab_utils.custom_logging.__about__ import __version__
from lab_utils.custom_logging.alarm import DEFAULT_ALARM_PORT, NonPickledSocketHandler
from lab_utils.custom_logging.config import configure_logging, shutdown_logging, string_to_bool
from lab_utils.custom_logging.daily_file import CustomTimedRotatingFileHandler
from lab_utils.custom_logging.formatters import ColoredFormatter, JsonLineFormatter
from lab_utils.custom_logging.levels import ConfigError, LevelError, parse_level
from lab_utils.custom_logging.listener import AlarmListener, parse_alarms
from lab_utils.custom_logging.logger import APP_NAME, SUCCESS, CustomLogger, getLogger
from lab_utils.custom_logging.mail import TlsSMTPHandler
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
    "JsonLineFormatter",
    "LevelError",
    "NonPickledSocketHandler",
    "SlackError",
    "SlackHandler",
    "TlsSMTPHandler",
    "__version__",
    "configure_logging",
    "getLogger",
    "parse_alarms",
    "parse_level",
    "shutdown_logging",
    "string_to_bool",
]
