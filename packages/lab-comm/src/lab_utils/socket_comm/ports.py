"""TCP port numbers: one check for arguments in code, config values and the command line.

A daemon binds 0 to 65535 (0: the system picks a free port); a client reaches 1 to 65535.
``int()`` alone let ``'abc'`` through as a bare "invalid literal for int()" that named no
option, and turned ``1507.9`` or ``True`` into a port without a word.
"""

from __future__ import annotations

BIND = 0
"""Lowest port a daemon binds (0: one the system picks)."""
CONNECT = 1
"""Lowest port a client connects to (0 means "any" only when binding)."""
HIGHEST = 65535
"""Highest TCP port."""


def accepted(lowest: int) -> str:
    """Return what a port option accepts, as errors say it: ``a whole number from 0 to 65535``."""
    return f"a whole number from {lowest} to {HIGHEST}"


def checked_port(value: object, lowest: int, option: str = "port") -> int:
    """Return ``value`` as a port from ``lowest`` to 65535.

    Parameters
    ----------
    value : int, str or float
        An ``int``, the text of a whole number (``'1507'``, as read from an environment
        variable), or a float with no fractional part.
    lowest : int
        :data:`BIND` (a daemon's port) or :data:`CONNECT` (a client's).
    option : str
        The option's name, for the error.

    Returns
    -------
    int
        The port.

    Raises
    ------
    ValueError
        ``value`` is not a whole number in the range (``bool`` is refused too: ``True``
        would otherwise be port 1); the message names the option and the range.
    """
    port: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, float) and value.is_integer():
        port = int(value)
    elif isinstance(value, str):
        try:
            port = int(value.strip())
        except ValueError:
            port = None
    if port is None or not lowest <= port <= HIGHEST:
        raise ValueError(f"{option} must be {accepted(lowest)}, not {value!r}")
    return port
