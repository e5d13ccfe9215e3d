"""Former home of the alarm receiver, kept so that existing imports keep working.

The receiver now lives with the rest of the alarm protocol in
:mod:`lab_utils.custom_logging.alarm`, and the console handler in
:mod:`lab_utils.custom_logging.console`; import them from there or from
:mod:`lab_utils.custom_logging`.
"""

from lab_utils.custom_logging.alarm import MAX_CONNECTION_BYTES, AlarmListener, parse_alarms
from lab_utils.custom_logging.console import console_handler

__all__ = ["MAX_CONNECTION_BYTES", "AlarmListener", "console_handler", "parse_alarms"]
