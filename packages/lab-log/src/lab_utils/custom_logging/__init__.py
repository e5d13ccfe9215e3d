"""Logging for lab daemons: colour console, daily JSON files, alarm socket, e-mail, Slack.

Part of the lab-utils suite; distribution ``lab-log``. Standard library only.
"""

from lab_utils.custom_logging.__about__ import __version__
from lab_utils.custom_logging.logger import SUCCESS, CustomLogger, getLogger

__all__ = ["SUCCESS", "CustomLogger", "__version__", "getLogger"]
