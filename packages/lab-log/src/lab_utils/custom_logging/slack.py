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


# Slack's replies are a word or a small JSON object; a proxy's error page is cut here.
_REPLY_LIMIT = 64 * 1024


def _check_address(option: str, url: str, *, show: bool) -> None:
    """Raise :class:`ConfigError` unless ``url`` is an http(s) address urllib can send to."""
    named = f"{option} {url!r}" if show else option
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"{named} is not an http(s) address")
    # http.client refuses these only when sending, quoting the address in its error.
    if any(char <= " " or char == "\x7f" for char in url):
        raise ConfigError(f"{named} contains a space or a control character")


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
    worker thread with a timeout. A message counts as delivered only when Slack says it
    posted it: a webhook answers 2xx with the body ``ok``, the Web API 2xx with JSON
    ``"ok": true``. Any other answer is a failed delivery, reported once on stderr with
    Slack's error text (``invalid_payload``, ``channel_not_found``, ...); the reports never
    contain the token or the webhook address.

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
        # The webhook address is a secret (whoever has it can post): errors name the
        # option, never its value.
        if webhook_url is not None:
            _check_address("webhook_url", webhook_url, show=False)
        _check_address("api_url", api_url, show=True)
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
        try:
            self._send(text)
        except Exception as exc:
            # urllib and http.client put addresses into some messages (a redirect's
            # target, a URL with a control character), and a proxy may echo what it got:
            # the token and the webhook address are secrets and must not reach stderr.
            message = str(exc)
            redacted = self._redact(message)
            if redacted != message:
                kind = "" if isinstance(exc, SlackError) else f"{type(exc).__name__}: "
                raise SlackError(kind + redacted) from None
            raise

    def _redact(self, text: str) -> str:
        secrets = [(self.webhook_url, "<webhook_url>"), (self.token, "<token>")]
        if self.webhook_url is not None:
            import urllib.parse

            # http.client names only the path, where a webhook's secret part lies.
            path = urllib.parse.urlsplit(self.webhook_url).path
            if len(path) > 1:
                secrets.append((path, "<webhook path>"))
        for secret, placeholder in secrets:
            if secret:
                for form in (secret, repr(secret)[1:-1]):
                    text = text.replace(form, placeholder)
        return text

    def _send(self, text: str) -> None:
        # Imported here: urllib.request pulls in ssl, email and http at start-up.
        import json
        import urllib.error
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
        where = "the webhook" if self.webhook_url is not None else "chat.postMessage"
        try:
            with opener.open(request, timeout=self.timeout) as answer:
                reply = answer.read(_REPLY_LIMIT)
        except urllib.error.HTTPError as refusal:
            # Only 2xx comes back as an answer; Slack's reason is in the error's body.
            try:
                reply = refusal.read(_REPLY_LIMIT)
            except OSError:
                reply = b""
            finally:
                refusal.close()
            raise SlackError(
                f"{where} answered HTTP {refusal.code} {refusal.reason}: {self._error_text(reply)}"
            ) from None
        if self.webhook_url is not None:
            # A webhook confirms a post with exactly "ok". Any other 2xx body (empty, an
            # HTML page of a proxy, a 204) has not confirmed it: counting it as delivered
            # would hide a lost alarm, while a failure is reported and can be looked into.
            if reply.strip() != b"ok":
                raise SlackError(
                    f'{where} answered HTTP 2xx without "ok": {self._error_text(reply)};'
                    " the message is not known to be posted"
                )
            return
        try:
            answer_json = json.loads(reply)
        except ValueError:
            answer_json = None
        if not (isinstance(answer_json, dict) and answer_json.get("ok") is True):
            raise SlackError(f"{where} refused the message: {self._error_text(reply)}")

    def _error_text(self, reply: bytes) -> str:
        """Slack's reason in ``reply``: the Web API's ``error``, else the text, one line."""
        import json

        try:
            answer = json.loads(reply)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("error"):
            text = str(answer["error"])
        else:
            text = reply.decode("utf-8", "replace")
        # One short line: the report is one stderr line, and a proxy's page can be long.
        text = " ".join(text.split())
        if not text:
            return "an empty reply"
        return text if len(text) <= 200 else text[:197] + "..."
