"""Slack's side of the wire, for tests: a local HTTP server that answers Web API calls the
way Slack does and records every call. Point the app's SLACK_API_URL at `url`.

Faults can be scripted per method: `fake.fail("chat.postMessage", status=429, retry_after=1)`
answers the next call(s) with that status; `fake.down(seconds)` refuses every call for a while.
`fake.rate_limit("chat.postMessage", per_second=1, burst=3)` enforces Slack's per-channel limit
the way Slack does (a token bucket per channel; over it, 429 with Retry-After), and records
each call it refused in `rate_limited`.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float

    @property
    def token(self) -> str | None:
        """The bearer token the call was made with (or its `token` argument)."""
        auth = self.headers.get("authorization", "")
        return (
            auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else self.args.get("token")
        )

    def json_arg(self, name: str) -> Any:
        value = self.args.get(name)
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class Fault:
    status: int
    retry_after: int | None = None
    times: int = 1
    body: dict[str, Any] | None = None


@dataclass
class ChannelLimit:
    """A token bucket per channel for one method."""

    per_second: float
    burst: int
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    def take(self, channel: str, now: float) -> float:
        """0 when the call may pass (a token taken), else the seconds until it could."""
        tokens, at = self.buckets.get(channel, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
        if tokens >= 1:
            self.buckets[channel] = (tokens - 1, now)
            return 0.0
        self.buckets[channel] = (tokens, now)
        return (1 - tokens) / self.per_second


@dataclass
class Workspace:
    """A workspace (or Grid org, org-wide) that can install the app: its bot token answers as
    it, until revoked."""

    team_id: str | None
    name: str
    enterprise_id: str | None = None
    is_enterprise_install: bool = False
    installer: str = "UADMIN"
    token: str = ""
    refresh_token: str | None = None
    expires_in: int | None = None


@dataclass
class Upload:
    file_id: str
    content: bytes = b""
    filename: str | None = None


class _Server(ThreadingHTTPServer):
    # Slack does not reset connections under load; the default backlog of 5 would.
    request_queue_size = 128
    connections = 0  # accepted so far: kept-alive connections carry many calls each

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)


@dataclass
class FakeSlack:
    calls: list[Call] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)  # bodies POSTed to response_url
    uploads: dict[str, Upload] = field(default_factory=dict)
    user_tz: dict[str, tuple[str, int]] = field(default_factory=dict)  # user -> (tz, offset s)
    user_locale: dict[str, str] = field(default_factory=dict)  # user -> Slack locale, e.g. zh-CN
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    down_until: float = 0.0
    latency: float = 0.0
    slow: dict[str, float] = field(default_factory=dict)  # method -> extra seconds before answering
    url: str = ""
    client_id: str = "CLIENT.ID"
    client_secret: str = "client-secret"
    tokens: dict[str, Workspace] = field(default_factory=dict)  # live bot token -> workspace
    codes: dict[str, Workspace] = field(default_factory=dict)  # unused OAuth codes
    refresh: dict[str, Workspace] = field(default_factory=dict)  # refresh token -> workspace
    limits: dict[str, ChannelLimit] = field(default_factory=dict)  # method -> per-channel limit
    rate_limited: list[Call] = field(default_factory=list)  # calls answered 429 by `limits`
    _server: _Server | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))

    # --- control ---------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # An answer is written as headers, then body. Without TCP_NODELAY the body waits
            # for the client's delayed ACK (~40 ms) on a kept-alive connection; Slack's
            # servers answer at once.
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}/api/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.responses.clear()
            self.uploads.clear()
            self.faults.clear()
            self.user_tz.clear()
            self.user_locale.clear()
            self.down_until = 0.0
            self.latency = 0.0
            self.slow.clear()
            self.tokens.clear()
            self.codes.clear()
            self.refresh.clear()
            self.limits.clear()
            self.rate_limited.clear()

    @property
    def connections(self) -> int:
        return self._server.connections if self._server is not None else 0

    @property
    def response_url(self) -> str:
        return self.url.replace("/api/", "/response/") + "hook"

    def install(self, workspace: Workspace) -> str:
        """Slack's half of an install: a fresh token for `workspace` and a one-time code the
        app exchanges for it (oauth.v2.access)."""
        n = next(self._ts)
        owner = workspace.enterprise_id if workspace.is_enterprise_install else workspace.team_id
        workspace.token = f"xoxb-{owner}-{n}"
        if workspace.expires_in is not None:
            workspace.refresh_token = f"xoxe-1-{owner}-{n}"
        code = f"code-{owner}-{n}"
        with self._lock:
            self.codes[code] = workspace
        return code

    def revoke(self, workspace: Workspace) -> None:
        """The workspace uninstalled the app: its tokens stop working."""
        with self._lock:
            self.tokens.pop(workspace.token, None)
            if workspace.refresh_token:
                self.refresh.pop(workspace.refresh_token, None)

    def calls_with(self, token: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.token == token]

    def fail(
        self, method: str, status: int, retry_after: int | None = None, times: int = 1
    ) -> None:
        with self._lock:
            self.faults.setdefault(method, []).append(Fault(status, retry_after, times))

    def rate_limit(self, method: str, per_second: float = 1.0, burst: int = 3) -> None:
        """Answers `method` 429 (Retry-After) for a channel over `per_second`, after `burst`."""
        with self._lock:
            self.limits[method] = ChannelLimit(per_second, burst)

    def down(self, seconds: float) -> None:
        self.down_until = time.monotonic() + seconds

    # --- queries ---------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(
        self, method: str, count: int = 1, timeout: float = 10.0, where=None
    ) -> list[Call]:  # type: ignore[no-untyped-def]
        """Waits until `count` calls of `method` (matching `where`, if given) were made."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls_to(method) if where is None or where(c)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = sorted({c.method for c in self.calls})
                raise AssertionError(
                    f"expected {count} call(s) to {method}, got {len(found)}; methods seen: {seen}"
                )
            time.sleep(0.02)

    def wait_for_response(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.responses) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} response_url post(s), got {len(self.responses)}"
                )
            time.sleep(0.02)
        return list(self.responses)

    # --- the wire --------------------------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        path = urllib.parse.urlparse(req.path).path
        if self.latency:
            time.sleep(self.latency)
        if path.startswith("/upload/"):
            file_id = path.rsplit("/", 1)[-1]
            with self._lock:
                upload = self.uploads.setdefault(file_id, Upload(file_id))
                upload.content = _file_bytes(raw, req.headers.get("Content-Type", ""))
            return _reply(req, 200, b"OK - " + str(len(raw)).encode(), "text/plain")
        if path.startswith("/response/"):
            with self._lock:
                self.responses.append(json.loads(raw or b"{}"))
            return _reply(req, 200, b"ok", "text/plain")
        method = path.rsplit("/", 1)[-1]
        if self.slow.get(method):
            time.sleep(self.slow[method])
        args = _parse_args(raw, req.headers.get("Content-Type", ""), req.path)
        headers = {k.lower(): v for k, v in req.headers.items()}
        with self._lock:
            call = Call(method, args, headers, time.monotonic())
            self.calls.append(call)
            fault = self._take_fault(method)
            limit = self.limits.get(method)
            wait = limit.take(str(args.get("channel")), call.at) if limit else 0.0
            if wait:
                self.rate_limited.append(call)
        if time.monotonic() < self.down_until:
            return _reply(req, 503, b"service unavailable", "text/plain")
        if wait:
            body = json.dumps({"ok": False, "error": "ratelimited"}).encode()
            retry = {"Retry-After": str(math.ceil(wait))}
            return _reply(req, 429, body, "application/json", retry)
        if fault is not None:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            error = "ratelimited" if fault.status == 429 else "internal_error"
            body = json.dumps(fault.body or {"ok": False, "error": error}).encode()
            return _reply(req, fault.status, body, "application/json", extra)
        body = json.dumps(self._answer(method, args, call)).encode()
        _reply(req, 200, body, "application/json")

    def _take_fault(self, method: str) -> Fault | None:
        queue = self.faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    def _oauth(self, args: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):  # slack_sdk sends the client's id and secret this way
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            client_id, secret = args.get("client_id"), args.get("client_secret")
        if (client_id, secret) != (self.client_id, self.client_secret):
            return {"ok": False, "error": "invalid_client_id"}
        with self._lock:
            if args.get("grant_type") == "refresh_token":
                workspace = self.refresh.get(str(args.get("refresh_token")))
                if workspace is None:
                    return {"ok": False, "error": "invalid_refresh_token"}
                self.tokens.pop(workspace.token, None)
                workspace.token = f"{workspace.token.split('~')[0]}~{next(self._ts)}"
                self.tokens[workspace.token] = workspace
            else:
                workspace = self.codes.pop(str(args.get("code")), None)
                if workspace is None:
                    return {"ok": False, "error": "invalid_code"}
                self.tokens[workspace.token] = workspace
                if workspace.refresh_token:
                    self.refresh[workspace.refresh_token] = workspace
        answer: dict[str, Any] = {
            "ok": True,
            "app_id": "A1",
            "access_token": workspace.token,
            "token_type": "bot",
            "scope": "commands,chat:write,im:write,users:read,files:write",
            "bot_user_id": "UBOT",
            "team": None
            if workspace.is_enterprise_install
            else {"id": workspace.team_id, "name": workspace.name},
            "enterprise": {"id": workspace.enterprise_id, "name": workspace.name}
            if workspace.enterprise_id
            else None,
            "is_enterprise_install": workspace.is_enterprise_install,
            "authed_user": {"id": workspace.installer},
        }
        if workspace.refresh_token:
            answer |= {"refresh_token": workspace.refresh_token, "expires_in": workspace.expires_in}
        return answer

    def _answer(self, method: str, args: dict[str, Any], call: Call) -> dict[str, Any]:
        ts = f"{1700000000 + next(self._ts)}.000100"
        if method in ("oauth.v2.access", "oauth.v2.exchange"):
            return self._oauth(args, call.headers)
        token = call.token
        if self.tokens and token not in self.tokens:
            return {"ok": False, "error": "invalid_auth"}
        workspace = self.tokens.get(token or "")
        if method == "auth.test" and workspace is not None:
            return {
                "ok": True,
                "user_id": "UBOT",
                "bot_id": "BBOT",
                "team_id": workspace.team_id,
                "enterprise_id": workspace.enterprise_id,
                "user": "prereg",
            }
        if method == "auth.test":
            return {
                "ok": True,
                "user_id": "UBOT",
                "bot_id": "BBOT",
                "team_id": "T1",
                "user": "prereg",
            }
        if method in ("views.open", "views.push", "views.update", "views.publish"):
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else (view or {})
            return {"ok": True, "view": {**view, "id": f"V{next(self._ts)}"}}
        if method == "chat.postMessage":
            return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": {"ts": ts}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        if method == "conversations.open":
            users = str(args.get("users", ""))
            return {"ok": True, "channel": {"id": "D" + users.split(",")[0]}}
        if method == "users.info":
            user = str(args.get("user"))
            tz, offset = self.user_tz.get(user, ("Etc/UTC", 0))
            answer = {"id": user, "tz": tz, "tz_offset": offset}
            if args.get("include_locale") in (True, "true", "1", 1):
                answer["locale"] = self.user_locale.get(user, "en-US")
            return {"ok": True, "user": answer}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts)}"
            with self._lock:
                self.uploads[file_id] = Upload(file_id, filename=args.get("filename"))
            base = self.url.replace("/api/", "/upload/")
            return {"ok": True, "upload_url": base + file_id, "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = args.get("files")
            files = json.loads(files) if isinstance(files, str) else (files or [])
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        return {"ok": True}


def _parse_args(raw: bytes, content_type: str, path: str) -> dict[str, Any]:
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(path).query))
    if "application/json" in content_type and raw:
        return {**query, **json.loads(raw)}
    if raw:
        return {**query, **dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace")))}
    return query


def _file_bytes(raw: bytes, content_type: str) -> bytes:
    """The file part of a multipart upload, or the raw body."""
    if "multipart/form-data" not in content_type:
        return raw
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    for part in raw.split(b"--" + boundary):
        if b"\r\n\r\n" in part and b"filename=" in part.split(b"\r\n\r\n", 1)[0]:
            return part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
    return raw


def _reply(
    req: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    req.send_response(status)
    req.send_header("Content-Type", content_type)
    req.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        req.send_header(key, value)
    req.end_headers()
    req.wfile.write(body)
