"""The Web API client: slack_sdk's WebClient, keeping its connections to Slack open.

slack_sdk's WebClient opens a new connection for every call (urllib sends `Connection: close`):
a TCP and, against slack.com, a TLS handshake before each `views.open`, message or DM. Here the
connections are kept and reused across calls and threads. Everything else (request building,
retry handlers, error handling, SlackResponse) is slack_sdk's own: only the step that sends one
prepared request and reads its answer is replaced, and it hands errors back the way urllib's
`urlopen` does, so the retry handlers see what they always saw.
"""

from __future__ import annotations

import http.client
import io
import select
import ssl
import threading
import time
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from slack_sdk import WebClient

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

    def __init__(self, *args: Any, pool: ConnectionPool | None = None, **kwargs: Any) -> None:
        """`pool`: share the connections of another client (one per workspace token)."""
        super().__init__(*args, **kwargs)
        self._pool = pool or ConnectionPool(self.timeout, self.ssl)

    @property
    def pool(self) -> ConnectionPool:
        return self._pool

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = urlsplit(url)
        if self.proxy is not None or parts.scheme not in ("http", "https"):
            return super()._perform_urllib_http_request_internal(url, req)
        default_port = 443 if parts.scheme == "https" else 80
        key = (parts.scheme, parts.hostname or "", parts.port or default_port)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        while True:
            conn, reused = self._pool.take(key)
            try:
                status, reason, headers, body = _exchange(conn, req, path)
            except BaseException as error:
                conn.close()
                if reused and _stale(error):
                    continue
                raise
            break
        if conn.sock is not None:  # http.client closes it when the answer says it will close
            self._pool.give_back(key, conn)
        if not 200 <= status < 300:  # as urllib's HTTPErrorProcessor does
            raise HTTPError(url, status, reason, headers, io.BytesIO(body))
        if headers.get_content_type() == "application/gzip":
            return {"status": status, "headers": headers, "body": body}
        charset = headers.get_content_charset() or "utf-8"
        return {"status": status, "headers": headers, "body": body.decode(charset)}


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
