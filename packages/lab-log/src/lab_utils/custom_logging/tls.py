"""The TLS settings of every network sink: one client context, certificates verified."""

from __future__ import annotations

import os

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Return a client TLS context that verifies the server (against ``ca_file`` if given).

    Parameters
    ----------
    ca_file : str, optional
        CA bundle (``~`` expanded), e.g. a lab server's own CA; the system CAs otherwise.

    Returns
    -------
    ssl.SSLContext
        A context with certificate and host name checks on.
    """
    # Imported here: ssl costs milliseconds at start-up and most daemons never send mail.
    import ssl

    cafile = os.path.expanduser(ca_file) if ca_file else None  # noqa: PTH111
    return ssl.create_default_context(cafile=cafile)
