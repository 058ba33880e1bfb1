"""`POST /slack/events`: the checks a Slack request must pass, then Bolt.

Every slash command, click and form comes through here, so the path is kept lean, as a plain
WSGI app in front of Flask:
- the body is read and parsed once (Bolt's parse, then the shape check on its result);
- the signature is checked once, here; Bolt's own check is off (bot/wiring/app.py);
- no Flask request context and no Flask response are built.

Every request passes the replay check, whatever its headers say: Slack's retry headers
(`X-Slack-Retry-Num`) are not signed, so anyone holding a captured request could add them. Only
the Events API retries, with a fresh signature and the same `event_id` in the signed body; a
delivery whose event was taken before is acknowledged and not handled again.

This took ~17% off the CPU of each request in the web process (bench/ack_latency.py,
docs/performance.md).

Each request is counted and timed for /metrics by its surface (`command:/preregister list`,
`action:<action_id>`, `view:<callback_id>`, `event:<type>`; `unverified` and `malformed` for
refused ones) and status class, and logged with a request id and its Slack team and user
(bot/logs.py), which the work after its ack keeps.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt import BoltRequest
from slack_sdk.signature import SignatureVerifier
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Request, Response

from bot import logs, metrics
from bot.clock import Clock
from bot.slack.after_ack import after_ack
from bot.web.replay import ReplayGuard
from bot.web.slack_shape import problem

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from slack_bolt import App

log = logging.getLogger(__name__)

PATH = "/slack/events"
MAX_BODY_BYTES = 1_000_000
"""Slack's payloads are small; anything bigger is refused (413) before it is parsed."""

_UNREADABLE = (TypeError, AttributeError, KeyError, IndexError, RecursionError)
"""What Bolt raises reading JSON that no Slack payload looks like (`"enterprise": 5`)."""


class _SlackRequest(Request):
    max_content_length = MAX_BODY_BYTES


def _unix_seconds(timestamp: str) -> bool:
    """The verifier raises on a timestamp that is not digits, or is too big for a float."""
    return timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12


def _text(status: int, text: str) -> Response:
    return Response(text, status, mimetype="text/html")


MAX_EVENT_ID = 100
"""Slack's event ids are ~12 characters; the key they make must fit `slack_events.key`."""


def event_key(body: dict[str, Any]) -> str | None:
    """The key of an Events API delivery, the same on each of Slack's retries; None when the
    event has no usable `event_id` (Slack always sends one)."""
    event_id, team = body.get("event_id"), body.get("team_id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID:
        return None
    return f"event:{team[:40] if isinstance(team, str) else ''}:{event_id}"


class SlackEndpoint:
    """The WSGI app answering `POST /slack/events`. `first_delivery(key)` records an event's key
    and says whether it is new (store/slack_events.py)."""

    def __init__(
        self,
        bolt_app: App,
        signing_secret: str,
        clock: Clock,
        first_delivery: Callable[[str], bool],
    ) -> None:
        self._bolt = bolt_app
        self._verifier = SignatureVerifier(signing_secret)
        self._replays = ReplayGuard(clock)
        self._first_delivery = first_delivery

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        seen = _Seen()
        with logs.bound(request_id=uuid.uuid4().hex[:16]):
            try:
                response = self._answer(_SlackRequest(environ), seen)
            except HTTPException as refused:  # 405 for another method, 413 for a huge body
                _observe(seen.surface, refused.code or 500, started)
                return refused(environ, start_response)
            _observe(seen.surface, response.status_code, started)
            return response(environ, start_response)

    def _answer(self, request: Request, seen: _Seen) -> Response:
        if request.method != "POST":
            raise MethodNotAllowed(["POST"])
        body = request.get_data()
        try:
            text = body.decode("utf-8")  # Slack sends UTF-8; the verifier would raise on others
        except UnicodeDecodeError:
            log.warning("refused a Slack request whose body is not UTF-8")
            return _text(400, "malformed request")
        refusal = self._refusal(request.headers, body)
        if refusal is not None:
            return refusal
        bolt_request, reason = self._parsed(text, request)
        seen.surface = "malformed"
        if bolt_request is None:
            log.warning("refused a malformed Slack request: %s", reason)
            return _text(400, "malformed request")
        seen.surface = surface(bolt_request.body)
        logs.bind(**_who(bolt_request.body))
        taken = self._taken_before(bolt_request.body)
        if taken is not None:
            return taken
        with after_ack.holding() as held:
            answer = self._bolt.dispatch(bolt_request)
        headers = [(name, value) for name, values in answer.headers.items() for value in values]
        response = Response(answer.body, answer.status, headers=headers)  # Bolt's content type
        response.call_on_close(held.release)  # once the server has written the ack
        return response

    def _refusal(self, headers: Headers, body: bytes) -> Response | None:
        """401 for a request Slack did not sign just now, or one seen before."""
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if not (_unix_seconds(timestamp) and self._verifier.is_valid(body, timestamp, signature)):
            log.warning("refused a Slack request with a bad or stale signature")
            return _text(401, "invalid request")
        if not self._replays.first_time(signature):
            log.warning("refused a replayed Slack request")
            return _text(401, "replayed request")
        return None

    def _taken_before(self, body: dict[str, Any]) -> Response | None:
        """The answer to an event delivered before (200, nothing done), or None to go on.
        Commands and interactions are never retried by Slack: they pass."""
        if body.get("type") != "event_callback":
            return None
        key = event_key(body)
        if key is None:
            log.warning("refused a malformed Slack request: event_callback without an event_id")
            return _text(400, "malformed request")
        try:
            first = self._first_delivery(key)
        except Exception as error:  # noqa: BLE001 - not recorded, so not taken: Slack retries
            log.warning("could not record a Slack event (%s); answered 503", type(error).__name__)
            return _text(503, "try again later")
        if first:
            return None
        log.info("acknowledged a repeated delivery of Slack event %s", body["event_id"])
        return Response("", 200)

    def _parsed(self, text: str, request: Request) -> tuple[BoltRequest | None, str | None]:
        """Bolt's request, or why this body cannot be a Slack request we handle. Bolt's own
        matchers index into the payload and raise on one Slack would never send; such a request
        is refused here, so nothing reaches a handler and nothing is stored."""
        try:
            bolt_request = BoltRequest(
                body=text,
                query=request.query_string.decode("latin-1"),
                headers=dict(request.headers.items()),
            )
        except ValueError:
            return None, "body is not valid JSON"
        except _UNREADABLE as error:
            return None, f"payload is not one Slack sends ({type(error).__name__})"
        reason = problem(bolt_request.body)
        return (None, reason) if reason else (bolt_request, None)


class _Seen:
    """What the request turned out to be, once the endpoint knows."""

    surface = "unverified"


def _observe(surface: str, status: int, started: float) -> None:
    outcome = f"{status // 100}xx"
    metrics.SLACK_REQUESTS.labels(surface, outcome).observe(time.perf_counter() - started)


SUBCOMMANDS = frozenset({"list", "check", "delete", "notify", "digest", "flow", "help"})
"""`/preregister`'s words (handlers/commands.py); any other text counts as `other`, so what a
user types never becomes a label."""


def _label(value: Any) -> str:
    """An id the app chose (action, callback, event type); `other` for anything unexpected."""
    valid = isinstance(value, str) and 0 < len(value) <= 64
    return value if valid and all(c.isalnum() or c in "_-.:/" for c in value) else "other"


def surface(body: dict[str, Any]) -> str:
    """The Slack surface a (parsed, valid) request came from, as a metrics label."""
    if "command" in body:
        words = str(body.get("text") or "").split()
        sub = words[0].lower() if words else ""
        command = _label(body.get("command"))
        if not sub:
            return f"command:{command}"
        return f"command:{command} {sub if sub in SUBCOMMANDS else 'other'}"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions else None
        return f"action:{_label(_part(first, 'action_id'))}"
    if kind in ("view_submission", "view_closed"):
        return f"view:{_label(_part(body.get('view'), 'callback_id'))}"
    if kind == "event_callback":
        return f"event:{_label(_part(body.get('event'), 'type'))}"
    return _label(kind)


def _part(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _who(body: dict[str, Any]) -> dict[str, Any]:
    """The Slack team and user of a request, for its log lines (ids only)."""
    team = body.get("team_id") or _part(body.get("team"), "id")
    user = body.get("user_id") or body.get("user")
    if isinstance(user, dict):
        user = user.get("id")
    if user is None:
        user = _part(body.get("event"), "user")
    return {
        "slack_team": _label(team) if team else None,
        "slack_user": _label(user) if isinstance(user, str) else None,
    }


def mount(flask_wsgi: Any, endpoint: SlackEndpoint) -> Any:
    """Flask's WSGI app with `PATH` answered by `endpoint` instead."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH:
            return endpoint(environ, start_response)
        return flask_wsgi(environ, start_response)

    return app
