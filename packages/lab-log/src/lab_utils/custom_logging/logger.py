"""The SUCCESS level, the logger class that has ``success()``, and ``getLogger``."""

from __future__ import annotations

import logging
import sys

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SUCCESS = 25
"""Level between INFO (20) and WARNING (30) for good news worth a Slack message."""

logging.addLevelName(SUCCESS, "SUCCESS")

APP_NAME = "root"
"""Name of the application logger that :func:`getLogger` returns when given no name.

:func:`~lab_utils.custom_logging.configure_logging` sets it from its ``logger_name``.
"""


# Frames between the caller and Logger._log that findCaller must skip: Python 3.11 made
# stacklevel count from the frame calling _log (here, success()); 3.10 already skipped it.
_OWN_FRAMES = 1 if sys.version_info >= (3, 11) else 0


class CustomLogger(logging.Logger):
    """A :class:`logging.Logger` with a :meth:`success` method for the SUCCESS level."""

    def __init__(self, name: str, level: int | str = logging.NOTSET) -> None:
        super().__init__(name, level)
        logging.addLevelName(SUCCESS, "SUCCESS")

    def success(self, message: object, *args: Any, **kws: Any) -> None:
        """Log ``message % args`` at level SUCCESS, like :meth:`logging.Logger.info`.

        The record names the caller's module and function, not this method.
        """
        if self.isEnabledFor(SUCCESS):
            kws["stacklevel"] = kws.get("stacklevel", 1) + _OWN_FRAMES
            self._log(SUCCESS, message, args, **kws)


def getLogger(name: str | None = None) -> CustomLogger:  # noqa: N802 - the 0.4.0 name
    """Return the logger ``name`` (default: the application logger) as a CustomLogger.

    Unlike :func:`logging.getLogger`, the default name ``'root'`` gives an application
    logger called ``root`` below the real root logger (as on Python 3.8 and older), so
    ``getLogger().success(...)`` works on every Python. A logger that already existed as a
    plain :class:`logging.Logger` gains ``success()`` too.

    Parameters
    ----------
    name : str, optional
        The logger name; the application name set by ``configure_logging`` when omitted.

    Returns
    -------
    CustomLogger
        The named logger.
    """
    wanted = name or APP_NAME
    if wanted == logging.root.name:
        # logging.getLogger('root') is the RootLogger since Python 3.9, which has no
        # success(); the manager still creates an ordinary child logger of that name.
        logger = logging.Logger.manager.getLogger(wanted)
    else:
        logger = logging.getLogger(wanted)
    if type(logger) is logging.Logger:
        # CustomLogger adds a method and no state: the class swap is safe, and it lets
        # loggers made before configure_logging (by drivers, at import) log SUCCESS too.
        logger.__class__ = CustomLogger
    return logger  # type: ignore[return-value]  # the class swap above
