"""The WSGI app served by `prereg-bot serve`: Slack requests (bot/slack_endpoint.py), health
check, invitation pages."""

from __future__ import annotations

from flask import Flask
from slack_bolt import App

from bot.app import Services
from bot.invite_pages import invite_blueprint
from bot.slack_endpoint import MAX_BODY_BYTES, SlackEndpoint, mount


def build_web_app(services: Services, bolt_app: App) -> Flask:
    web = Flask("prereg_bot")
    web.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    endpoint = SlackEndpoint(bolt_app, services.settings.slack_signing_secret or "", services.clock)
    web.wsgi_app = mount(web.wsgi_app, endpoint)  # type: ignore[method-assign]

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
