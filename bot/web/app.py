"""The WSGI app served by `prereg-bot serve`: Slack requests (bot/web/slack_endpoint.py), health
check, invitation pages."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Flask
from slack_bolt import App

from bot.clock import Clock
from bot.web.slack_endpoint import MAX_BODY_BYTES, SlackEndpoint, mount


def build_web_app(
    bolt_app: App,
    *,
    signing_secret: str,
    clock: Clock,
    database_answers: Callable[[], bool],
    first_delivery: Callable[[str], bool],
    pages: Blueprint,
) -> Flask:
    web = Flask("prereg_bot")
    web.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    endpoint = SlackEndpoint(bolt_app, signing_secret, clock, first_delivery)
    web.wsgi_app = mount(web.wsgi_app, endpoint)  # type: ignore[method-assign]

    @web.get("/healthz")
    def healthz() -> tuple[dict[str, str], int]:
        if database_answers():
            return {"status": "ok"}, 200
        return {"status": "database unavailable"}, 503

    web.register_blueprint(pages)
    return web
