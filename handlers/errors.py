"""The one error handler: log the failure, tell the user briefly, never show a stack trace.

Bolt (1.30) loses an ack when a listener raises right after calling `ack()` (its runner resets
the acknowledged response), and Slack would then see a 404. So listeners that ack first are
wrapped in `guarded`, which reports such failures the same way as the `@app.error` handler and
does not re-raise; failures before the ack (view submissions) reach `@app.error`.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_sdk.webhook import WebhookClient

from handlers import views

log = logging.getLogger(__name__)


def report(error: BaseException, body: dict[str, Any]) -> None:
    """Logs the failure and, where Slack gave a response_url, tells the user in one line."""
    kind = body.get("type") or ("slash_command" if body.get("command") else "unknown")
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    log.error("unhandled error in a %s from %s", kind, user, exc_info=error)
    response_url = body.get("response_url")
    if response_url:
        try:
            message = {**views.error_message(), "replace_original": False}
            WebhookClient(response_url, timeout=5).send_dict(message)
        except Exception:  # noqa: BLE001 - telling the user is best effort
            log.warning("could not tell the user about the error", exc_info=True)


def guarded(listener: Callable[..., None]) -> Callable[..., None]:
    """For listeners taking `ack` and `body` that ack first: failures after the ack are
    reported here instead of being raised into Bolt."""

    @functools.wraps(listener)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            listener(*args, **kwargs)
        except Exception as error:
            ack = kwargs.get("ack")
            if ack is None or getattr(ack, "response", None) is None:
                raise
            report(error, kwargs.get("body") or {})

    return run


def register(app: Any, services: Any) -> None:
    @app.error
    def on_error(error, body, response) -> BoltResponse | None:  # type: ignore[no-untyped-def]
        not_yet_acked = response is not None
        if body.get("type") == "view_submission" and not_yet_acked:
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
