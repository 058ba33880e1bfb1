"""The WSGI app served by `prereg-bot serve`: Slack requests, health check, invitation pages."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier

from bot.app import Services
from bot.invite_pages import invite_blueprint
from bot.replay import ReplayGuard
from bot.slack_shape import problem
from handlers.after_ack import after_ack

log = logging.getLogger(__name__)

# Slack's payloads are small; anything bigger is refused before Bolt parses it.
MAX_BODY_BYTES = 1_000_000


def _unix_seconds(timestamp: str) -> bool:
    """The verifier raises on a timestamp that is not digits, or is too big for a float."""
    return timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12


def build_web_app(services: Services, bolt_app: App) -> Flask:
    web = Flask("prereg_bot")
    web.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    slack = SlackRequestHandler(bolt_app)
    replays = ReplayGuard(services.clock)
    verifier = SignatureVerifier(services.settings.slack_signing_secret or "")

    @web.post("/slack/events")
    def slack_events() -> Response | tuple[str, int]:
        body = request.get_data()
        try:
            body.decode("utf-8")  # Slack sends UTF-8; the verifier would raise on anything else
        except UnicodeDecodeError:
            log.warning("refused a Slack request whose body is not UTF-8")
            return "malformed request", 400
        headers = request.headers
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        if not (
            _unix_seconds(timestamp)
            and verifier.is_valid(body, timestamp, headers.get("X-Slack-Signature"))
        ):
            log.warning("refused a Slack request with a bad or stale signature")
            return "invalid request", 401
        if not headers.get("X-Slack-Retry-Num") and not replays.first_time(
            headers.get("X-Slack-Signature", "")
        ):
            log.warning("refused a replayed Slack request")
            return "replayed request", 401
        if reason := problem(request.get_data(as_text=True), request.mimetype or None):
            log.warning("refused a malformed Slack request: %s", reason)
            return "malformed request", 400
        with after_ack.holding() as held:
            response = slack.handle(request)
        response.call_on_close(held.release)  # once the server has written the ack
        return response

    @web.get("/healthz")
    def healthz() -> tuple[dict[str, str], int]:
        if services.db.ping():
            return {"status": "ok"}, 200
        return {"status": "database unavailable"}, 503

    web.register_blueprint(
        invite_blueprint(
            services.service, services.settings, services.clock, services.deliverer.kick
        )
    )
    return web
