"""Composition root: builds the services, the Bolt app and the web app from Settings.

The only module in bot/ that imports handlers/; only the entry points (bot/entry/) import it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

import handlers
from bot.clock import Clock, SystemClock
from bot.member_cache import MemberCache
from bot.outbox.delivery import Deliverer, SenderRegistry, WakeSignal
from bot.rules import RuleSettings
from bot.service import PreregistrationService
from bot.settings import Settings
from bot.slack.client import KeepAliveWebClient
from store.db import BACKGROUND_WAITS, REQUEST_WAITS, Database
from store.directory_watch import DirectoryWatch

if TYPE_CHECKING:  # Bolt is imported when an app is built: `prereg-bot sweep` needs none
    from flask import Flask
    from slack_bolt import App, BoltContext, BoltResponse

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a handler or a sender may need, built once per process."""

    settings: Settings
    db: Database
    clock: Clock
    service: PreregistrationService
    registry: SenderRegistry
    deliverer: Deliverer
    client: WebClient
    member_watch: DirectoryWatch | None = None
    """Keeps the service's member cache fresh; started by `serve` and `socket`."""


def make_client(settings: Settings) -> WebClient:
    """Web API client honouring SLACK_API_URL, retrying rate limits and server errors, and
    keeping its connections open (bot/slack/client.py)."""
    # slack_sdk formats a debug line with each request's whole body unless its logger's own
    # level is set: an unset level counts as DEBUG there, whatever the handlers would print.
    logger = logging.getLogger("prereg_bot.slack_api")
    logger.setLevel(logger.getEffectiveLevel())
    client = KeepAliveWebClient(
        token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10, logger=logger
    )
    client.retry_handlers = [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
    ]
    return client


WORKER_POOL_SIZE = 8  # the delivery threads, the sweep and a spare


def create_services(
    settings: Settings,
    clock: Clock | None = None,
    wake: WakeSignal | None = None,
    worker: bool = False,
) -> Services:
    """`wake` connects this process's `deliverer.kick()` to the worker process that delivers;
    `worker` sizes the database pool and its waits for that process instead of for answering
    Slack."""
    clock = clock or SystemClock()
    pool = WORKER_POOL_SIZE if worker else settings.db_pool_size
    waits = BACKGROUND_WAITS if worker else REQUEST_WAITS  # store/db.py: why these
    db = Database(settings.database_url, waits, pool_size=pool, max_overflow=pool // 4)
    rules = RuleSettings(holidays=settings.holidays)
    members, watch = None, None
    if settings.member_cache and db.is_postgres and not worker:
        members = MemberCache()
        watch = DirectoryWatch(db.url, changed=members.changed, lost=members.lost)
    service = PreregistrationService(db, clock, rules, members)
    registry = SenderRegistry()
    deliverer = Deliverer(db, clock, registry, wake=wake)
    services = Services(
        settings=settings,
        db=db,
        clock=clock,
        service=service,
        registry=registry,
        deliverer=deliverer,
        client=make_client(settings),
        member_watch=watch,
    )
    handlers.register_senders(registry, services)
    return services


def build_bolt_app(services: Services) -> App:
    from slack_bolt import App

    settings = services.settings
    app = App(
        signing_secret=settings.slack_signing_secret,
        client=services.client,
        token_verification_enabled=False,
        # bot/web/slack_endpoint.py checks each HTTP request's signature (and refuses replays)
        # before Bolt sees it; Socket Mode needs no check.
        request_verification_enabled=False,
        logger=logging.getLogger("prereg_bot.slack"),
        # Slack is answered when a listener returns; see bot/slack/after_ack.py.
        process_before_response=True,
    )

    @app.middleware
    def shared_client(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        """Listeners get the process's one Web API client, whose connections to Slack stay
        open, instead of the new client Bolt makes for every request. There is one bot token
        and nothing changes it, so sharing the client is safe."""
        context["client"] = services.client
        return next()

    handlers.register(app, services)
    return app


def build_web(services: Services) -> Flask:
    """The WSGI app of `serve`: the Bolt app behind the Slack endpoint, health, invitations."""
    from bot.web.app import build_web_app
    from bot.web.invite_pages import invite_blueprint
    from store.slack_events import first_delivery

    pages = invite_blueprint(
        services.service, services.settings, services.clock, services.deliverer.kick
    )
    return build_web_app(
        build_bolt_app(services),
        signing_secret=services.settings.slack_signing_secret or "",
        clock=services.clock,
        database_answers=services.db.ping,
        first_delivery=lambda key: first_delivery(services.db, key, services.clock.now()),
        pages=pages,
    )
