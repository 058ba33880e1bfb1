"""Composition root: builds the services, the Bolt app and the web app from Settings.

The only module in bot/ that imports handlers/; only the entry points (bot/entry/) import it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

import handlers
from bot.clock import Clock, SystemClock
from bot.i18n import (
    LANGUAGES,
    N_,
    _,
    format_number,
    format_when,
    set_language,
    translations,
    use,
)
from bot.identity import Actor, key_of
from bot.member_cache import MemberCache
from bot.outbox.delivery import Deliverer, SenderRegistry, WakeSignal
from bot.pacing import Pacer
from bot.rules import RuleSettings
from bot.schedule import DigestProgress
from bot.service import PreregistrationService
from bot.settings import Settings
from bot.slack.actors import actor_key
from bot.slack.after_ack import after_ack
from bot.slack.authorize import RecentBots
from bot.slack.client import (
    ConnectionPool,
    KeepAliveWebClient,
    PooledRespond,
    RateLimitCounter,
)
from bot.slack.languages import ReaderLanguages
from bot.slack.matching import direct_body_matchers
from bot.slack.workspaces import SlackClients
from bot.workspaces import Workspaces
from store.db import BACKGROUND_WAITS, REQUEST_WAITS, Database
from store.directory_watch import DirectoryWatch

if TYPE_CHECKING:  # Bolt is imported when an app is built: `prereg-bot sweep` needs none
    from flask import Flask
    from slack_bolt import App, BoltContext, BoltResponse
    from slack_sdk.oauth.installation_store import Installation, InstallationStore

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
    slack: SlackClients
    """The Web API client of each workspace (bot/slack/workspaces.py); `client` is its home."""
    workspaces: Workspaces
    languages: ReaderLanguages
    """Each reader's language from their Slack locale (bot/slack/languages.py)."""
    installation_store: InstallationStore | None = None
    """slack-sdk's store of the installations' tokens; distributed mode only."""
    member_watch: DirectoryWatch | None = None
    """Keeps the service's member cache fresh; started by `serve` and `socket`."""
    digests: DigestProgress = field(default_factory=DigestProgress)
    """How far the day's digests are recorded, as this process's sweeps have seen."""


def make_client(
    settings: Settings,
    token: str | None = None,
    pool: ConnectionPool | None = None,
    pacer: Pacer | None = None,
) -> WebClient:
    """Web API client honouring SLACK_API_URL, retrying rate limits and server errors, and
    keeping its connections open (bot/slack/client.py). `token` defaults to SLACK_BOT_TOKEN;
    `pacer` paces its calls to Slack's rate limits (the background senders')."""
    # slack_sdk formats a debug line with each request's whole body unless its logger's own
    # level is set: an unset level counts as DEBUG there, whatever the handlers would print.
    logger = logging.getLogger("prereg_bot.slack_api")
    logger.setLevel(logger.getEffectiveLevel())
    client = KeepAliveWebClient(
        token=token or settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=10,
        logger=logger,
        pool=pool,
        pacer=pacer,
    )
    client.retry_handlers = [
        RateLimitCounter(),
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
    ]
    return client


def installation_store(settings: Settings, db: Database) -> InstallationStore:
    """slack-sdk's SQLAlchemy store on the app's database (tables by migration 0004)."""
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

    return SQLAlchemyInstallationStore(client_id=settings.slack_client_id or "", engine=db.engine)


def make_slack_clients(
    settings: Settings,
    workspaces: Workspaces,
    store: InstallationStore | None,
    pacer: Pacer | None = None,
) -> SlackClients:
    pool: list[ConnectionPool] = []

    def client_for(token: str | None) -> WebClient:
        client = make_client(settings, token, pool[0] if pool else None, pacer)
        pool[:] = [client.pool]  # type: ignore[attr-defined]
        return client

    rotator = None
    if store is not None:
        from slack_sdk.oauth.token_rotation import TokenRotator

        rotator = TokenRotator(
            client_id=settings.slack_client_id or "",
            client_secret=settings.slack_client_secret or "",
            client=make_client(settings, token=None),
        )
    return SlackClients(
        client_for,
        settings.slack_bot_token,
        workspaces=workspaces if store is not None else None,
        store=store,
        rotator=rotator,
        home_org=settings.home_team,
    )


WORKER_POOL_SIZE = 8  # the delivery threads, the sweep and a spare


def import_surfaces() -> None:
    """Imports every surface module of handlers/ (and what they import: QR codes, mail), as
    `register` and `register_senders` will: `serve` does so before it forks its worker, so
    that the two processes share those pages (bot/entry/worker.py)."""
    handlers._modules()


def load_shared_data() -> None:
    """Loads what the web process and the worker would each load on first use, so that
    `serve` loads it once, before it forks its worker, and the two share it
    (bot/entry/worker.py): each language's catalog, Babel's locale data of each language
    (~5 MB for English, ~1 MB more for Chinese) and the ORM's mapper configuration."""
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    for lang in LANGUAGES:
        translations(lang)
        with use(lang):
            format_when(datetime(2026, 1, 1, tzinfo=UTC))
            format_number(0.5)


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
    workspaces = Workspaces(db, clock)
    store = installation_store(settings, db) if settings.distributed else None
    # The background senders pace their calls; the answers to users are not held back.
    slack = make_slack_clients(settings, workspaces, store, Pacer() if worker else None)
    if store is not None and not worker:
        # Bolt's authorisation reads the bot of each request's workspace through this; the
        # uninstall handler and the OAuth flow write through it (bot/slack/authorize.py).
        store = RecentBots(store)
    services = Services(
        settings=settings,
        db=db,
        clock=clock,
        service=service,
        registry=registry,
        deliverer=deliverer,
        client=slack.home,
        slack=slack,
        workspaces=workspaces,
        languages=ReaderLanguages(),
        installation_store=store,
        member_watch=watch,
    )
    handlers.register_senders(registry, services)
    return services


def build_bolt_app(services: Services) -> App:
    from slack_bolt import App

    settings = services.settings
    distributed = _distributed_options(services) if settings.distributed else {}
    with _bolt_sees_no_env_token():
        app = _bolt_app(App, services, distributed)
    home = settings.home_team
    api_log = logging.getLogger("prereg_bot.slack_api")
    api_log.setLevel(api_log.getEffectiveLevel())  # see make_client

    @app.middleware
    def workspace_client(
        body: dict, context: BoltContext, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        """Listeners get the Web API client of the workspace the request came from, one kept
        per token so its connections to Slack stay open (Bolt makes a new one per request),
        and the acting user's key (bot/identity.py) as `context["actor"]`. `respond` posts
        to the response_url over the same kept-alive connections (Bolt's opens a new one)."""
        if settings.distributed:
            context["client"] = services.slack.for_token(context.bot_token)
        else:
            context["client"] = services.client
        pool = getattr(context["client"], "pool", None)
        if context.response_url is not None and pool is not None:
            context["respond"] = PooledRespond(
                response_url=context.response_url, pool=pool, logger=api_log
            )
        context["actor"] = actor_key(body, context, home)
        # What is known of the reader's language now; work after the ack asks Slack if new.
        set_language(services.languages.cached(context["actor"]))
        return next()

    after_ack.prepare = services.languages.settle
    after_ack.budget = settings.ack_budget_ms / 1000
    handlers.register(app, services)
    direct_body_matchers(app)  # bot/slack/matching.py: the same matching, cheaper
    return app


@contextmanager
def _bolt_sees_no_env_token() -> Iterator[None]:
    """Bolt reads SLACK_BOT_TOKEN from the environment when no `token` is given, and then warns
    at every start that it is unused: the app hands Bolt its own client (which carries that
    token, or in distributed mode each installation's). Settings read it already, so Bolt is
    built without it in view. Runs once, before the server takes requests."""
    saved = os.environ.pop("SLACK_BOT_TOKEN", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["SLACK_BOT_TOKEN"] = saved


def _bolt_app(app_class: type[App], services: Services, distributed: dict[str, object]) -> App:
    settings = services.settings
    return app_class(
        signing_secret=settings.slack_signing_secret,
        # In distributed mode every request's token comes from its installation.
        client=services.slack.for_token(None) if settings.distributed else services.client,
        token_verification_enabled=False,
        # bot/web/slack_endpoint.py checks each HTTP request's signature (and refuses replays)
        # before Bolt sees it; Socket Mode needs no check.
        request_verification_enabled=False,
        logger=logging.getLogger("prereg_bot.slack"),
        # Slack is answered when a listener returns; see bot/slack/after_ack.py.
        process_before_response=True,
        **distributed,
    )


def _distributed_options(services: Services) -> dict[str, object]:
    """Bolt's OAuth flow and per-installation authorisation (distributed mode)."""
    from bot.slack.authorize import store_authorize
    from bot.slack.oauth import INSTALL_PATH, oauth_settings

    settings = services.settings
    assert services.installation_store is not None

    def on_installed(installation: Installation) -> None:
        installer = Actor(installation.user_id, installation.team_id, installation.enterprise_id)
        services.workspaces.record_install(
            enterprise_id=installation.enterprise_id,
            team_id=installation.team_id,
            name=installation.enterprise_name
            if installation.is_enterprise_install
            else installation.team_name,
            is_enterprise_install=bool(installation.is_enterprise_install),
            installed_by=key_of(installer, settings.home_team),
        )
        services.slack.forget(installer.org)

    install_url = f"{settings.public_base_url or ''}{INSTALL_PATH}"
    # R13: whom to ask. Read once when the app is built: Bolt takes one fixed message, and
    # without an installation the reader's language cannot be asked of Slack: so in each.
    emails = [email for _who, email in services.service.manager_contacts() if email][:3]

    def not_installed() -> str:
        ask = (
            _("Your ecosystem manager can help: {emails}.").format(emails=", ".join(emails))
            if emails
            else _("Your ecosystem manager can help too.")
        )
        return _(
            "prereg-bot is not installed in this Slack workspace, or it was removed. Ask your "
            "Slack admin to install it: {url} . {ask}"
        ).format(url=install_url, ask=ask)

    every_language = []
    for lang in LANGUAGES:
        with use(lang):
            every_language.append(not_installed())
    return {
        # Bolt's own, but keeping auth.test's answer per token: see bot/slack/authorize.py.
        "authorize": store_authorize(
            logger=logging.getLogger("prereg_bot.slack"),
            installation_store=services.installation_store,
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            bot_only=True,
            client=make_client(settings, token=None),  # token rotation: on SLACK_API_URL
        ),
        "oauth_settings": oauth_settings(
            client_id=settings.slack_client_id or "",
            client_secret=settings.slack_client_secret or "",
            store=services.installation_store,
            engine=services.db.engine,
            on_installed=on_installed,
            help_line=N_("If this keeps happening, ask your ecosystem manager for help."),
        ),
        "installation_store_bot_only": True,
        "user_facing_authorize_error_message": "\n\n".join(every_language),
    }


def build_web(services: Services) -> Flask:
    """The WSGI app of `serve`: the Bolt app behind the Slack endpoint, health, invitations."""
    from bot.web.app import build_web_app
    from bot.web.health import Readiness
    from bot.web.invite_pages import invite_blueprint
    from bot.web.metrics import MetricsPage, StateCollector
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
        readiness=Readiness(services.db),
        metrics=MetricsPage(
            services.settings.metrics_token, StateCollector(services.db, services.clock)
        ),
    )
