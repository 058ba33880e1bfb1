"""The WSGI app served by `prereg-bot serve`: Slack requests (bot/web/slack_endpoint.py), health
and readiness checks, metrics (bot/web/metrics.py), invitation pages, and in distributed mode
the OAuth install pages (bot/slack/oauth.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Flask, abort, request
from slack_bolt import App

from bot.clock import Clock
from bot.errors import BUSY_MESSAGE, Busy
from bot.i18n import LANGUAGES, _, from_accept_language, html_lang, use
from bot.web.health import Readiness
from bot.web.metrics import MetricsPage
from bot.web.slack_endpoint import MAX_BODY_BYTES, SlackEndpoint, mount

TEXT = {"Content-Type": "text/plain; charset=utf-8"}

log = logging.getLogger(__name__)


def build_web_app(
    bolt_app: App,
    *,
    signing_secret: str,
    clock: Clock,
    database_answers: Callable[[], bool],
    first_delivery: Callable[[str], bool],
    pages: Blueprint,
    readiness: Readiness | None = None,
    metrics: MetricsPage | None = None,
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

    @web.get("/readyz")
    def readyz() -> tuple[str, int, dict[str, str]]:
        """503 with one line while the schema is behind the code or the database is down."""
        problem = readiness.problem() if readiness is not None else None
        if problem is None:
            return "ready\n", 200, TEXT
        return f"not ready: {problem}\n", 503, TEXT

    @web.get("/metrics")
    def metrics_page() -> tuple[bytes | str, int, dict[str, str]]:
        if metrics is None or not metrics.enabled:
            abort(404)  # METRICS_TOKEN unset: nothing here, so nothing leaks
        if not metrics.authorised(request.headers.get("Authorization")):
            return "unauthorized\n", 401, {**TEXT, "WWW-Authenticate": "Bearer"}
        body, content_type = metrics.render()
        return body, 200, {"Content-Type": content_type}

    flow = bolt_app.oauth_flow
    if flow is not None:  # distributed mode: "Add to Slack" and the OAuth redirect
        from slack_bolt.adapter.flask import SlackRequestHandler

        adapter = SlackRequestHandler(bolt_app)
        for path in (flow.install_path, flow.redirect_uri_path):
            web.add_url_rule(path, path, lambda: adapter.handle(request), methods=["GET"])

    @web.errorhandler(Busy)
    def busy(_error: Busy) -> tuple[str, int, dict[str, str]]:
        """A page whose transaction gave up waiting (rolled back): "try again", not a 500, in
        the reader's language (the invitation page's switch, else Accept-Language)."""
        log.warning("database busy on %s %s; answered 503", request.method, request.url_rule)
        chosen = request.args.get("lang")
        lang = (
            chosen
            if chosen in LANGUAGES
            else from_accept_language(request.headers.get("Accept-Language"))
        )
        with use(lang):
            headers = {**TEXT, "Retry-After": "5", "Content-Language": html_lang()}
            return _(BUSY_MESSAGE) + "\n", 503, headers

    web.register_blueprint(pages)
    return web
