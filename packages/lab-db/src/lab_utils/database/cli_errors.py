"""The one error the command line reports: what went wrong, where, and what to do."""

from __future__ import annotations


class CommandError(Exception):
    """A failure the command line reports as one line, with exit status 2.

    Parameters
    ----------
    what : str
        What went wrong.
    where : str, optional
        File, ``host:port`` or table it happened at.
    hint : str, optional
        The obvious next step, printed on a line of its own.
    """

    def __init__(self, what: str, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        self.hint = hint

    def lines(self) -> list[str]:
        """Return the ``error:`` line and, when there is one, the ``hint:`` line."""
        where = f" ({self.where})" if self.where else ""
        return [f"error: {self.what}{where}", *([f"hint: {self.hint}"] if self.hint else [])]
