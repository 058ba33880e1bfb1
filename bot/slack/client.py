"""The Web API client: slack_sdk's WebClient, keeping its connections to Slack open.

slack_sdk's WebClient opens a new connection for every call (urllib sends `Connection: close`):
a TCP and, against slack.com, a TLS handshake before each `views.open`, message or DM. Here the
connections are kept and reused across calls and threads. Everything else (request building,
retry handlers, error handling, SlackResponse) is slack_sdk's own: only the step that sends one
prepared request and reads its answer is replaced, and it hands errors back the way urllib's
`urlopen` does, so the retry handlers see what they always saw.

A client given a `Pacer` (the worker's and `sweep`'s) paces its calls to Slack's rate limits
(bot/pacing.py); every client counts the 429s Slack answers, by method (`RateLimitCounter`).
"""

from __future__ import annotations

import http.client
import io
import logging
import select
import ssl
import threading
import time
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from slack_bolt.context.respond import Respond
from slack_bolt.context.respond.internals import _build_message
from slack_sdk import WebClient
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient, WebhookResponse

from bot import metrics, pacing

IDLE_SECONDS = 30.0
"""A connection idle for longer is closed rather than reused: servers and load balancers
drop idle connections after a while, and a stale one would fail the next call."""

MAX_IDLE_PER_HOST = 32

Key = tuple[str, str, int]


class ConnectionPool:
    """Idle connections per (scheme, host, port); a connection is lent to one call at a time."""

    def __init__(self, timeout: float, context: ssl.SSLContext | None) -> None:
        self._timeout = timeout
        self._context = context
        self._idle: dict[Key, list[tuple[float, http.client.HTTPConnection]]] = {}
        self._lock = threading.Lock()

    def take(self, key: Key) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to `key`, and whether it was used before."""
        now = time.monotonic()
        while True:
            with self._lock:
                stack = self._idle.get(key)
                if not stack:
                    break
                since, conn = stack.pop()
            if now - since < IDLE_SECONDS and not _dropped(conn):
                return conn, True
            conn.close()
        scheme, host, port = key
        if scheme == "https":
            context = self._context or ssl.create_default_context()
            return http.client.HTTPSConnection(
                host, port, timeout=self._timeout, context=context
            ), False
        return http.client.HTTPConnection(host, port, timeout=self._timeout), False

    def give_back(self, key: Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            stack = self._idle.setdefault(key, [])
            if len(stack) < MAX_IDLE_PER_HOST:
                stack.append((time.monotonic(), conn))
                return
        conn.close()


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle connection with something to read has been closed by the server (or is out of
    step with it): either way it must not carry another request."""
    if conn.sock is None:
        return True
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


# A reused connection the server closed just before our request arrived fails with one of
# these before any answer; the request was not read, so it is sent once more on a new one.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def _stale(error: BaseException) -> bool:
    reason = error.reason if isinstance(error, URLError) else error
    return isinstance(reason, _STALE)


class KeepAliveWebClient(WebClient):
    """WebClient whose calls share a pool of keep-alive connections."""

    def __init__(
        self,
        *args: Any,
        pool: ConnectionPool | None = None,
        pacer: pacing.Pacer | None = None,
        **kwargs: Any,
    ) -> None:
        """`pool`: share the connections of another client (one per workspace token).
        `pacer`: pace the calls to Slack's rate limits (the outbox's senders)."""
        super().__init__(*args, **kwargs)
        self._pool = pool or ConnectionPool(self.timeout, self.ssl)
        self._pacer = pacer

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        if self._pacer is None:
            return super().api_call(api_method, **kwargs)
        key = _lookup_key(self.token, api_method, kwargs)
        if key is not None:
            cached = _LOOKUPS.get(key)
            if cached is not None:
                return cached
        self._pace(api_method, kwargs)
        response = super().api_call(api_method, **kwargs)
        pacing.wrote(api_method)
        if key is not None:
            _LOOKUPS.put(key, response)
        return response

    def defer_unless_ready(self, method: str, channel: str | None = None) -> None:
        """Raises `Paced` if a call of `method` (to `channel`) now would be paced and the
        notice may still be tried later; takes no token. A sender asks before work that a
        paced call would throw away (the QR code drawn for an upload)."""
        if self._pacer is None or not pacing.may_defer():
            return
        wait = self._pacer.ready(self.token or "", method, channel)
        if wait is not None:
            metrics.SLACK_PACED.labels(method).inc()
            raise pacing.Paced(method, wait)

    def _pace(self, method: str, kwargs: dict[str, Any]) -> None:
        """Waits for the call's turn, or raises `Paced` if the notice may be tried later."""
        assert self._pacer is not None
        channel = _channel_of(kwargs)
        counted = False
        while True:
            wait = self._pacer.take(self.token or "", method, channel)
            if wait is None:
                return
            if not counted:
                metrics.SLACK_PACED.labels(method).inc()
                counted = True
            if pacing.may_defer():
                raise pacing.Paced(method, wait)
            time.sleep(wait.seconds)

    @property
    def pool(self) -> ConnectionPool:
        return self._pool

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = urlsplit(url)
        if self.proxy is not None or parts.scheme not in ("http", "https"):
            return super()._perform_urllib_http_request_internal(url, req)
        status, headers, body = _pooled(self._pool, url, req)
        if headers.get_content_type() == "application/gzip":
            return {"status": status, "headers": headers, "body": body}
        charset = headers.get_content_charset() or "utf-8"
        return {"status": status, "headers": headers, "body": body.decode(charset)}


class KeepAliveWebhookClient(WebhookClient):
    """slack_sdk's WebhookClient (the client behind `respond`, posting to a response_url),
    sending through a ConnectionPool: urllib opens a new connection for every reply."""

    def __init__(self, url: str, *, pool: ConnectionPool, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._pool = pool

    def _perform_http_request_internal(self, url: str, req: Request) -> WebhookResponse:
        if self.proxy is not None or urlsplit(url).scheme not in ("http", "https"):
            return super()._perform_http_request_internal(url, req)
        status, headers, body = _pooled(self._pool, url, req)
        charset = headers.get_content_charset() or "utf-8"
        return WebhookResponse(
            url=url,
            status_code=status,
            body=body.decode(charset),
            headers=headers,  # type: ignore[arg-type]  # as slack_sdk passes urllib's
        )


class PooledRespond(Respond):
    """Bolt's `respond`, posting through a KeepAliveWebhookClient (the wiring puts one in each
    request's context). The message is built by Bolt's own code, as before."""

    def __init__(
        self, *, response_url: str | None, pool: ConnectionPool, logger: logging.Logger
    ) -> None:
        super().__init__(response_url=response_url)
        self._pool = pool
        self._logger = logger

    def __call__(  # type: ignore[override]
        self, text: str | dict[str, Any] = "", **fields: Any
    ) -> WebhookResponse:
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        if isinstance(text, dict):
            message = _build_message(**text)
        elif isinstance(text, str):
            message = _build_message(text=text, **fields)
        else:
            raise ValueError(f"The arg is unexpected type ({type(text)})")
        client = KeepAliveWebhookClient(self.response_url, pool=self._pool, logger=self._logger)
        return client.send_dict(message)


def _pooled(
    pool: ConnectionPool, url: str, req: Request
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Sends `req` on a pooled connection (a new one if a reused one turns out stale) and
    reads the answer; a status other than 2xx raises HTTPError, as urllib's urlopen does."""
    parts = urlsplit(url)
    default_port = 443 if parts.scheme == "https" else 80
    key = (parts.scheme, parts.hostname or "", parts.port or default_port)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    while True:
        conn, reused = pool.take(key)
        try:
            status, reason, headers, body = _exchange(conn, req, path)
        except BaseException as error:
            conn.close()
            if reused and _stale(error):
                continue
            raise
        break
    if conn.sock is not None:  # http.client closes it when the answer says it will close
        pool.give_back(key, conn)
    if not 200 <= status < 300:  # as urllib's HTTPErrorProcessor does
        raise HTTPError(url, status, reason, headers, io.BytesIO(body))
    return status, headers, body


def _exchange(
    conn: http.client.HTTPConnection, req: Request, path: str
) -> tuple[int, str, http.client.HTTPMessage, bytes]:
    """Sends `req` and reads the whole answer. As with urlopen, a failure to send is a URLError
    (the retry handlers retry those), one while waiting for the answer is raised as it is."""
    try:
        conn.request(req.get_method(), path, body=req.data, headers=dict(req.header_items()))
    except OSError as error:
        raise URLError(error) from error
    response = conn.getresponse()
    body = response.read()
    return response.status, response.reason, response.headers, body


LOOKUP_SECONDS = 300.0
"""How long a paced client reuses a `users.info` answer: a burst of notices about one member's
customers asks Slack once for that member's time zone, not once per notice."""


class _Lookups:
    def __init__(self, size: int = 1000) -> None:
        self._answers: dict[tuple[str, str], tuple[float, SlackResponse]] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> SlackResponse | None:
        with self._lock:
            found = self._answers.get(key)
            if found is None or time.monotonic() - found[0] > LOOKUP_SECONDS:
                return None
            return found[1]

    def put(self, key: tuple[str, str], response: SlackResponse) -> None:
        with self._lock:
            if len(self._answers) >= self._size:
                self._answers.clear()
            self._answers[key] = (time.monotonic(), response)


_LOOKUPS = _Lookups()


def _lookup_key(token: str | None, method: str, kwargs: dict[str, Any]) -> tuple[str, str] | None:
    if method != "users.info":
        return None
    params = kwargs.get("params") or kwargs.get("data") or {}
    user = params.get("user") if isinstance(params, dict) else None
    return (token or "", user) if isinstance(user, str) else None


def _channel_of(kwargs: dict[str, Any]) -> str | None:
    for part in ("json", "data", "params"):
        args = kwargs.get(part)
        if isinstance(args, dict) and isinstance(args.get("channel"), str):
            return args["channel"]
    return None


class RateLimitCounter(RetryHandler):
    """Counts every 429 by Web API method, and leaves the retry to the handlers after it."""

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None and response.status_code == 429:
            method = urlsplit(request.url).path.rsplit("/", 1)[-1]
            metrics.SLACK_RATE_LIMITED.labels(method if _known(method) else "other").inc()
        return False


def _known(method: str) -> bool:
    """A Web API method name (letters and dots), not whatever a URL ended with."""
    return 0 < len(method) <= 64 and all(c.isalnum() or c in "._" for c in method)
