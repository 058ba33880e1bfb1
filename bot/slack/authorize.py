"""Bolt's per-request authorisation in distributed mode, without a call to Slack per request.

Bolt's `InstallationStoreAuthorize` reads the workspace's bot token from the installation
store and then calls `auth.test` with it, on every request, before any listener can ack: a
Web API round trip (on a new connection: Bolt's per-request client keeps none) in front of
every ack. With 200 workspaces that made `/preregister`'s ack 1.7x-3x slower than in
single-workspace mode (docs/performance.md).

Here the token is still read from the store on every request, so an uninstall (its rows
deleted by handlers/installs.py), a reinstall or a rotation by any process counts at the very
next request, with nothing to invalidate. Only `auth.test`'s answer for a token is kept: a
token names the same bot, team and user for its whole life. An entry is dropped after
AUTH_TEST_TTL_SECONDS, so a token revoked at Slack without the app hearing of it (no
`tokens_revoked` event) is refused by authorisation again within that time; meanwhile the Web
API calls made with it fail as they would for background work.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

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
