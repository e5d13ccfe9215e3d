"""Alarm e-mails over SMTP with STARTTLS or implicit TLS, certificates verified."""

from __future__ import annotations

import logging
import logging.handlers
import os

from lab_utils.custom_logging.delivery import QueuedDelivery
from lab_utils.custom_logging.levels import ConfigError
from lab_utils.custom_logging.tls import tls_context

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import smtplib
    from typing import Any

# smtplib and email are imported when a mail handler is built or sends: together with ssl
# they were most of this package's import time, and most daemons never send mail.

SMTP_PORT = 25
"""Port of plain SMTP and STARTTLS when the configuration names none."""

SMTP_SSL_PORT = 465
"""Port of SMTP over implicit TLS when the configuration names none."""

SECURITY_MODES = ("starttls", "ssl", "none")
"""``starttls`` upgrades a plain connection (port 587/25), ``ssl`` is TLS from the first
byte (port 465), ``none`` sends in clear (only when asked for)."""


def read_credentials(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Read the two-line credentials file: user name, then password.

    Trailing whitespace is stripped and the text split at the first newline, as in 0.4.

    Parameters
    ----------
    path : str or path-like
        The file (``~`` is expanded).

    Returns
    -------
    tuple of str
        ``(username, password)``.

    Raises
    ------
    ConfigError
        When the file does not hold a user name and a password.
    """
    with open(os.path.expanduser(path), encoding="utf-8") as file:  # noqa: PTH111
        text = file.read().rstrip()
    pieces = [piece for piece in text.split("\n", 1) if piece]
    if len(pieces) != 2:
        raise ConfigError(f"{path}: expected two lines, the user name and the password")
    return pieces[0], pieces[1]


class TlsSMTPHandler(QueuedDelivery, logging.handlers.SMTPHandler):
    """SMTP handler with TLS: one e-mail per record, all recipients in To.

    Sending happens in a worker thread with a timeout on every network call; a server
    that is down or hangs never holds up the caller or the other handlers. An e-mail
    counts as delivered when the server accepted it for every recipient; one refused
    recipient makes it a failed delivery (``SMTPRecipientsRefused``), reported once.

    Parameters
    ----------
    mailhost : str or tuple
        Host name, or ``(host, port)``.
    fromaddr : str
        Sender address.
    toaddrs : list of str or str
        Recipient addresses.
    subject : str
        Subject of every message.
    credentials : tuple, optional
        ``(username, password)`` to log in; no login when omitted.
    secure : tuple, optional
        Accepted for compatibility with :class:`logging.handlers.SMTPHandler`; TLS is set
        with ``security``.
    timeout : float, optional
        Seconds allowed for each network operation.
    security : str, optional
        ``'starttls'`` (default), ``'ssl'`` or ``'none'``.
    ca_file : str, optional
        CA bundle to verify the server with (a lab mail server with its own CA).
    rate_limit : int, optional
        At most this many e-mails per ``rate_period`` seconds, then one digest; 0 for none.
    rate_period : float, optional
        Rate-limit window in seconds.
    """

    def __init__(
        self,
        mailhost: str | tuple[str, int],
        fromaddr: str,
        toaddrs: list[str] | str,
        subject: str,
        credentials: tuple[str, str] | None = None,
        secure: tuple[Any, ...] | None = None,
        timeout: float = 5.0,
        *,
        security: str = "starttls",
        ca_file: str | None = None,
        rate_limit: int = 0,
        rate_period: float = 60.0,
    ) -> None:
        if security not in SECURITY_MODES:
            raise ConfigError(f"security = {security!r}: use one of {', '.join(SECURITY_MODES)}")
        logging.handlers.SMTPHandler.__init__(
            self, mailhost, fromaddr, toaddrs, subject, credentials, secure, timeout
        )
        self.security = security
        self.ca_file = ca_file
        self.start_courier(
            f"mail via {self.mailhost}:{self.mailport or self._default_port()}",
            rate_limit=rate_limit,
            rate_period=rate_period,
        )

    def _default_port(self) -> int:
        return SMTP_SSL_PORT if self.security == "ssl" else SMTP_PORT

    def _connect(self) -> smtplib.SMTP:
        import smtplib

        port = self.mailport or self._default_port()
        if self.security == "ssl":
            return smtplib.SMTP_SSL(
                self.mailhost, port, timeout=self.timeout, context=tls_context(self.ca_file)
            )
        smtp = smtplib.SMTP(self.mailhost, port, timeout=self.timeout)
        if self.security == "starttls":
            smtp.ehlo()
            smtp.starttls(context=tls_context(self.ca_file))
            smtp.ehlo()
        return smtp

    def deliver(self, record: logging.LogRecord) -> None:
        """Send ``record`` as one e-mail.

        Parameters
        ----------
        record : logging.LogRecord
            The record to send.
        """
        self._send(self.getSubject(record), self.render(record))

    def deliver_digest(self, text: str, last: logging.LogRecord) -> None:
        """Send the summary of held-back records as one e-mail."""
        self._send(f"{self.getSubject(last)} (digest)", text)

    def _send(self, subject: str, body: str) -> None:
        import smtplib
        from email.message import EmailMessage

        message = EmailMessage()
        message.set_content(body)
        message["Subject"] = subject
        message["To"] = ", ".join(self.toaddrs)
        message["From"] = self.fromaddr
        smtp = self._connect()
        try:
            if self.username:
                smtp.login(self.username, self.password)
            refused = smtp.send_message(message)
            if refused:
                # smtplib raises only when every recipient was refused; an alarm that
                # reached some of them did not reach what the configuration asks for.
                raise smtplib.SMTPRecipientsRefused(refused)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
