"""The one error handler: log the failure, tell the user briefly, never show a stack trace.

Failures before the ack (view submissions) reach `@app.error`; failures in work done after the
ack (bot/slack/after_ack.py) are reported with `report`, the same way. A busy database
(bot.errors.Busy) is no fault of ours to trace: one line in the log, "try again" to the user.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_sdk.webhook import WebhookClient

from bot.errors import BUSY_MESSAGE, Busy
from bot.i18n import _
from bot.slack.after_ack import after_ack
from handlers import views

log = logging.getLogger(__name__)


def explain(error: BaseException, body: dict[str, Any]) -> dict[str, Any]:
    """Logs the failure; returns the one line that tells the user (in the ack, or posted)."""
    kind = body.get("type") or ("slash_command" if body.get("command") else "unknown")
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    if isinstance(error, Busy):
        log.warning("database busy in a %s from %s; told to try again", kind, user)
        return views.ephemeral(":hourglass: " + _(BUSY_MESSAGE))
    log.error("unhandled error in a %s from %s", kind, user, exc_info=error)
    return views.error_message()


def report(error: BaseException, body: dict[str, Any]) -> None:
    """Logs the failure and, where Slack gave a response_url, tells the user in one line."""
    message = explain(error, body)
    response_url = body.get("response_url")
    if response_url:
        try:
            message = {**message, "replace_original": False}
            WebhookClient(response_url, timeout=5).send_dict(message)
        except Exception:  # noqa: BLE001 - telling the user is best effort
            log.warning("could not tell the user about the error", exc_info=True)


def _busy_form(body: dict[str, Any]) -> dict[str, Any] | None:
    """The form left open with "busy, try again" on its first field; None without a field."""
    values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
    first = next(iter(values), None)
    if first is None:
        return None
    log.warning("database busy in a view_submission; told the user to try again")
    return {"response_action": "errors", "errors": {first: _(BUSY_MESSAGE)}}


def register(app: Any, services: Any) -> None:
    from slack_bolt import BoltResponse

    after_ack.report = report
    after_ack.explain = explain

    @app.error
    def on_error(error, body, response) -> BoltResponse | None:  # type: ignore[no-untyped-def]
        not_yet_acked = response is not None
        if body.get("type") == "view_submission" and not_yet_acked:
            payload = _busy_form(body) if isinstance(error, Busy) else None
            if payload is None:
                log.error("unhandled error in a view_submission", exc_info=error)
                payload = {"response_action": "update", "view": views.error_modal()}
            return BoltResponse(
                status=200,
                body=json.dumps(payload),
                headers={"content-type": "application/json;charset=utf-8"},
            )
        report(error, body)
        if not_yet_acked:
            return BoltResponse(status=200, body="")
        return None
