"""The WSGI app served by `prereg-bot serve`: Slack requests (bot/web/slack_endpoint.py), health
check, invitation pages, and in distributed mode the OAuth install pages (bot/slack/oauth.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Flask, request
from slack_bolt import App

from bot.clock import Clock
from bot.errors import BUSY_MESSAGE, Busy
from bot.web.slack_endpoint import MAX_BODY_BYTES, SlackEndpoint, mount

log = logging.getLogger(__name__)


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

    flow = bolt_app.oauth_flow
    if flow is not None:  # distributed mode: "Add to Slack" and the OAuth redirect
        from slack_bolt.adapter.flask import SlackRequestHandler

        adapter = SlackRequestHandler(bolt_app)
        for path in (flow.install_path, flow.redirect_uri_path):
            web.add_url_rule(path, path, lambda: adapter.handle(request), methods=["GET"])

    @web.errorhandler(Busy)
    def busy(_error: Busy) -> tuple[str, int, dict[str, str]]:
        """A page whose transaction gave up waiting (rolled back): "try again", not a 500."""
        log.warning("database busy on %s %s; answered 503", request.method, request.url_rule)
        return BUSY_MESSAGE, 503, {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "5"}

    web.register_blueprint(pages)
    return web
