"""The WSGI app served by `prereg-bot serve`: Slack requests, health check, invitation pages."""

from __future__ import annotations

from flask import Flask, Response, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler

from bot.app import Services
from bot.invite_pages import invite_blueprint

# Slack's payloads are small; anything bigger is refused before Bolt parses it.
MAX_BODY_BYTES = 1_000_000


def build_web_app(services: Services, bolt_app: App) -> Flask:
    web = Flask("prereg_bot")
    web.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    slack = SlackRequestHandler(bolt_app)

    @web.post("/slack/events")
    def slack_events() -> Response:
        return slack.handle(request)

    @web.get("/healthz")
    def healthz() -> tuple[dict[str, str], int]:
        if services.db.ping():
            return {"status": "ok"}, 200
        return {"status": "database unavailable"}, 503

    web.register_blueprint(invite_blueprint(services))
    return web
