"""Time ranges as a user types them: ``--since 1h30m``, ``--from``/``--to`` ISO times."""

from __future__ import annotations

import datetime as dt
import re

_PART = re.compile(r"(\d+(?:\.\d*)?)\s*(s|sec|m|min|h|d|w)")
_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> dt.timedelta:
    """Return ``'90s'``, ``'15min'``, ``'1h30m'``, ``'7d'`` as a timedelta.

    Raises
    ------
    ValueError
        Anything else.
    """
    compact = text.replace(" ", "").lower()
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration such as 90s, 15min, 1h30m, 7d or 2w")
    return dt.timedelta(seconds=sum(float(n) * _SECONDS[u] for n, u in parts))


def moment(text: str) -> dt.datetime:
    """Return ISO 8601 ``text`` as an aware datetime (a time without zone is local time).

    Raises
    ------
    ValueError
        Not an ISO 8601 date or time.
    """
    stripped = text.strip()
    if stripped.endswith(("Z", "z")):
        stripped = stripped[:-1] + "+00:00"
    try:
        found = dt.datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 time such as 2026-01-31T12:00 or 2026-01-31"
        ) from None
    return found if found.tzinfo else found.astimezone()
