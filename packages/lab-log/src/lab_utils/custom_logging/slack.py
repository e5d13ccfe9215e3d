"""Slack messages through an incoming webhook or a bot token, with the standard library."""

from __future__ import annotations

import logging

from lab_utils.custom_logging.delivery import QueuedDelivery
from lab_utils.custom_logging.levels import ConfigError
from lab_utils.custom_logging.tls import tls_context

# urllib costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import urllib.request
    from typing import Any

SLACK_API_URL = "https://slack.com/api"
"""Default base of the Web API used in token mode."""


class SlackError(RuntimeError):
    """Slack answered, but refused the message."""


_REDIRECT_REFUSER: list[type[urllib.request.BaseHandler]] = []


def _refuse_redirects() -> urllib.request.BaseHandler:
    """Return a handler failing on redirects; its class is built on first use."""
    import urllib.request

    if _REDIRECT_REFUSER:
        return _REDIRECT_REFUSER[0]()

    class RefuseRedirects(urllib.request.HTTPRedirectHandler):
        """Fail on a redirect: urllib follows a POST's 301/302/303 as a bodiless GET."""

        def redirect_request(
            self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
        ) -> None:
            raise SlackError(
                f"the server answered {code} {msg}, a redirect to {newurl}: the message was"
                " not posted; configure the address it redirects to"
            )

    _REDIRECT_REFUSER.append(RefuseRedirects)
    return RefuseRedirects()


class SlackHandler(QueuedDelivery):
    """Send each record as a Slack message.

    Webhook mode (``webhook_url``) posts ``{"text": ...}`` to an incoming webhook. Token
    mode (``token`` and ``channel``) calls ``chat.postMessage`` of the Web API at
    ``api_url``, which a lab proxy or a test server may stand in for. Sending happens in a
    worker thread with a timeout; an answer other than success counts as a failure,
    reported once.

    Parameters
    ----------
    webhook_url : str, optional
        Incoming-webhook address; selects webhook mode.
    token : str, optional
        Bot token for token mode.
    channel : str, optional
        Channel for token mode.
    username : str, optional
        Display name for token mode (the old ``user`` option).
    api_url : str, optional
        Base of the Web API, default :data:`SLACK_API_URL`.
    ca_file : str, optional
        CA bundle to verify the server with.
    timeout : float, optional
        Seconds allowed for each request.
    rate_limit : int, optional
        At most this many messages per ``rate_period`` seconds, then one digest; 0 for none.
    rate_period : float, optional
        Rate-limit window in seconds.
    """

    def __init__(
        self,
        webhook_url: str | None = None,
        token: str | None = None,
        channel: str | None = None,
        username: str | None = None,
        *,
        api_url: str = SLACK_API_URL,
        ca_file: str | None = None,
        timeout: float = 10.0,
        rate_limit: int = 0,
        rate_period: float = 60.0,
    ) -> None:
        logging.Handler.__init__(self)
        if webhook_url is None and not (token and channel):
            raise ConfigError("Slack needs webhook_url, or a token (api_file) and a channel")
        for url in (webhook_url, api_url):
            if url is not None and not url.startswith(("https://", "http://")):
                raise ConfigError(f"{url!r} is not an http(s) address")
        self.webhook_url = webhook_url
        self.token = token
        self.channel = channel
        self.username = username
        self.api_url = api_url.rstrip("/")
        self.ca_file = ca_file
        self.timeout = timeout
        target = "webhook" if webhook_url else f"{self.api_url} #{channel}"
        self.start_courier(f"Slack {target}", rate_limit=rate_limit, rate_period=rate_period)

    def deliver(self, record: logging.LogRecord) -> None:
        """Post ``record`` as one message.

        Parameters
        ----------
        record : logging.LogRecord
            The record to send.
        """
        self._post(self.render(record))

    def deliver_digest(self, text: str, last: logging.LogRecord) -> None:
        """Post the summary of held-back records as one message."""
        self._post(text)

    def _post(self, text: str) -> None:
        # Imported here: urllib.request pulls in ssl, email and http at start-up.
        import json
        import urllib.request

        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.webhook_url is not None:
            url, body = self.webhook_url, {"text": text}
        else:
            url = f"{self.api_url}/chat.postMessage"
            body = {"channel": self.channel or "", "text": text}
            if self.username:
                body["username"] = self.username
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        handlers: list[urllib.request.BaseHandler] = [_refuse_redirects()]
        if url.startswith("https://"):
            handlers.append(urllib.request.HTTPSHandler(context=tls_context(self.ca_file)))
        opener = urllib.request.build_opener(*handlers)
        with opener.open(request, timeout=self.timeout) as answer:
            reply = answer.read().decode("utf-8", "replace")
        if self.webhook_url is None:
            try:
                ok = bool(json.loads(reply).get("ok"))
            except (ValueError, AttributeError):
                ok = False
            if not ok:
                raise SlackError(f"chat.postMessage refused the message: {reply[:200]}")
