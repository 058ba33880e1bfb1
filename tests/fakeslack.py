"""Slack's side of the wire, for tests: a local HTTP server that answers Web API calls the
way Slack does and records every call. Point the app's SLACK_API_URL at `url`.

Faults can be scripted per method: `fake.fail("chat.postMessage", status=429, retry_after=1)`
answers the next call(s) with that status; `fake.down(seconds)` refuses every call for a while.
"""

from __future__ import annotations

import itertools
import json
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
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    down_until: float = 0.0
    latency: float = 0.0
    slow: dict[str, float] = field(default_factory=dict)  # method -> extra seconds before answering
    url: str = ""
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
            self.down_until = 0.0
            self.latency = 0.0
            self.slow.clear()

    @property
    def connections(self) -> int:
        return self._server.connections if self._server is not None else 0

    @property
    def response_url(self) -> str:
        return self.url.replace("/api/", "/response/") + "hook"

    def fail(
        self, method: str, status: int, retry_after: int | None = None, times: int = 1
    ) -> None:
        with self._lock:
            self.faults.setdefault(method, []).append(Fault(status, retry_after, times))

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
            self.calls.append(Call(method, args, headers, time.monotonic()))
            fault = self._take_fault(method)
        if time.monotonic() < self.down_until:
            return _reply(req, 503, b"service unavailable", "text/plain")
        if fault is not None:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            error = "ratelimited" if fault.status == 429 else "internal_error"
            body = json.dumps(fault.body or {"ok": False, "error": error}).encode()
            return _reply(req, fault.status, body, "application/json", extra)
        body = json.dumps(self._answer(method, args)).encode()
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

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        ts = f"{1700000000 + next(self._ts)}.000100"
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
            return {"ok": True, "user": {"id": user, "tz": tz, "tz_offset": offset}}
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
