"""Bolt's per-request authorisation in distributed mode, without a call to Slack or a query
per request.

Bolt's `InstallationStoreAuthorize` reads the workspace's bot token from the installation
store and then calls `auth.test` with it, on every request, before any listener can ack: a
Web API round trip (on a new connection: Bolt's per-request client keeps none) and a query in
front of every ack. With 200 workspaces that made `/preregister`'s ack 1.5x-3x slower than in
single-workspace mode (docs/performance.md).

`store_authorize` keeps `auth.test`'s answer per token (AuthTestAnswers): a token names the
same bot, team and user for its whole life, and the token itself is still looked up for every
request (through RecentBots below), so a deleted installation is refused at once. An
answer is dropped after AUTH_TEST_TTL_SECONDS, so a token revoked at Slack without the app
hearing of it (no `tokens_revoked` event) is refused by authorisation again within that time;
meanwhile the Web API calls made with it fail as they would for background work.

`RecentBots` keeps the bots read from the store for a short while, and forgets them all on
any write through it: the web process's uninstall handler (handlers/installs.py) and OAuth
flow write through it, so an uninstall or reinstall counts at the next request. The worker
does not use it (it has SlackClients' own token TTL and rotates tokens itself).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from logging import Logger
from typing import TYPE_CHECKING, Any

from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore

if TYPE_CHECKING:
    from slack_bolt.authorization.authorize import InstallationStoreAuthorize

AUTH_TEST_TTL_SECONDS = 600.0
MAX_TOKENS = 5_000


class AuthTestAnswers(dict):  # type: ignore[type-arg]
    """Bolt's `authorize_result_cache` (token -> AuthorizeResult) with an age limit and a size
    bound. Bolt asks `token in cache`, then reads `cache[token]`, from many threads: an entry
    is only ever dropped long after it stopped counting as present, so the read never misses."""

    def __init__(self, ttl: float = AUTH_TEST_TTL_SECONDS, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self._ttl = ttl
        self._clock = clock
        self._until: dict[object, float] = {}
        self._lock = threading.Lock()

    def __contains__(self, token: object) -> bool:
        with self._lock:
            return self._until.get(token, 0.0) > self._clock()

    def __setitem__(self, token: str, result: Any) -> None:
        with self._lock:
            now = self._clock()
            if len(self._until) >= MAX_TOKENS:
                for old in [t for t, until in self._until.items() if until < now - self._ttl]:
                    del self._until[old]
                    super().pop(old, None)
                if len(self._until) >= MAX_TOKENS:
                    return  # that many live tokens: ask Slack each time rather than grow
            self._until[token] = now + self._ttl
            super().__setitem__(token, result)


def store_authorize(**options: Any) -> InstallationStoreAuthorize:
    """Bolt's InstallationStoreAuthorize (`options` are its own), keeping auth.test answers."""
    from slack_bolt.authorization.authorize import InstallationStoreAuthorize

    authorize = InstallationStoreAuthorize(cache_enabled=True, **options)
    authorize.authorize_result_cache = AuthTestAnswers()
    return authorize


BOT_TTL_SECONDS = 30.0
"""How long the web process reuses a workspace's bot read from the store. Changes made through
this process's store (install, reinstall, uninstall) count at once; this bounds how late one
made by another process (a second `serve`, `socket`) is seen: as SlackClients' token TTL."""


class RecentBots(InstallationStore):
    """The installation store, remembering each workspace's bot (its token) for BOT_TTL_SECONDS
    so that authorising a request needs no query. Any write through it forgets them all, before
    and after writing, and a bot read while a write happened is not kept, so nothing deleted or
    replaced here is ever served again. Bots with a refresh token (rotating tokens) are never
    kept: the worker may rotate them, and the next request must see the new token."""

    def __init__(
        self, store: InstallationStore, ttl: float = BOT_TTL_SECONDS, clock=time.monotonic
    ) -> None:  # type: ignore[no-untyped-def]
        self.underlying = store
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._bots: dict[tuple[str, str], tuple[float, Bot]] = {}
        self._generation = 0

    @property
    def logger(self) -> Logger:
        return self.underlying.logger

    def find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        key = (enterprise_id or "", "" if is_enterprise_install else team_id or "")
        with self._lock:
            until, bot = self._bots.get(key, (0.0, None))
            if bot is not None and until > self._clock():
                return bot
            generation = self._generation
        bot = self.underlying.find_bot(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        if bot is not None and not bot.bot_refresh_token:
            with self._lock:
                if generation == self._generation:
                    self._bots[key] = (self._clock() + self._ttl, bot)
        return bot

    def find_installation(self, **kwargs: Any) -> Installation | None:
        return self.underlying.find_installation(**kwargs)

    def save(self, installation: Installation) -> None:
        self._write(self.underlying.save, installation)

    def save_bot(self, bot: Bot) -> None:
        self._write(self.underlying.save_bot, bot)

    def delete_bot(self, **kwargs: Any) -> None:
        self._write(self.underlying.delete_bot, **kwargs)

    def delete_installation(self, **kwargs: Any) -> None:
        self._write(self.underlying.delete_installation, **kwargs)

    def delete_all(self, **kwargs: Any) -> None:
        self._write(self.underlying.delete_all, **kwargs)

    def _write(self, write: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        self._forget()
        try:
            write(*args, **kwargs)
        finally:
            self._forget()

    def _forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._bots.clear()
