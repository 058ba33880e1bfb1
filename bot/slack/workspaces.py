"""The Web API client of each workspace: every call uses the token of the workspace it talks to.

In single-workspace mode there is one client and one token. In distributed mode the tokens are
in slack-sdk's installation store; listeners get theirs from Bolt's authorization, background
senders (the worker, the sweep) ask here by the org of the person or partner they write to.
Bolt refreshes a rotating token only while it handles a request, so the look-up here refreshes
one that is about to expire, and saves it, on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.identity import split_key
from bot.workspaces import Workspaces, WorkspaceView

if TYPE_CHECKING:
    from slack_sdk.oauth.installation_store import InstallationStore
    from slack_sdk.oauth.token_rotation import TokenRotator

log = logging.getLogger(__name__)

DEAD_TOKEN_ERRORS = frozenset(
    {"account_inactive", "invalid_auth", "not_authed", "token_revoked", "token_expired"}
)
"""Slack's answers to a call with a token that will never work again."""

TOKEN_TTL_SECONDS = 30.0
"""How long a looked-up token is reused before the store is asked again; a revocation heard
by another process reaches this one within this time, or at once by a dead-token answer."""

ROTATE_MINUTES_BEFORE_EXPIRY = 30


class WorkspaceUnavailable(Exception):
    """The workspace has no working installation (never installed, uninstalled, revoked)."""

    def __init__(self, org: str | None, reason: str) -> None:
        super().__init__(f"workspace {org or 'of the vendor'}: {reason}")
        self.org = org
        self.reason = reason


class TokenChanged(Exception):
    """Slack refused a token that the store has since replaced (a reinstall, a rotation heard
    by another process): the call can be made again at once with the new one."""


def is_dead_token(error: SlackApiError) -> bool:
    return error.response.get("error") in DEAD_TOKEN_ERRORS


class SlackClients:
    def __init__(
        self,
        make_client: Callable[[str | None], WebClient],
        home_token: str | None,
        workspaces: Workspaces | None = None,
        store: InstallationStore | None = None,
        rotator: TokenRotator | None = None,
        home_org: str | None = None,
    ) -> None:
        """`make_client(token)` builds a client (sharing connections); `home_token` is
        SLACK_BOT_TOKEN, if set; `workspaces`/`store`/`rotator` only in distributed mode."""
        self._make = make_client
        self._home_org = home_org
        self._workspaces = workspaces
        self._store = store
        self._rotator = rotator
        self._lock = threading.Lock()
        self._clients: dict[str | None, WebClient] = {}
        self._tokens: dict[str | None, tuple[float, str]] = {}
        self.home = self.for_token(home_token)
        """The client of SLACK_BOT_TOKEN (single-workspace mode: the only one)."""

    @property
    def distributed(self) -> bool:
        return self._store is not None

    def for_token(self, token: str | None) -> WebClient:
        """A client for `token`; clients are kept so their connections stay open."""
        with self._lock:
            client = self._clients.get(token)
            if client is None:
                if len(self._clients) > 2_000:
                    self._clients.clear()
                client = self._clients[token] = self._make(token)
            return client

    def for_org(self, org: str | None) -> WebClient:
        """The client of the workspace whose users' keys start with `org` (None: the
        vendor's). Raises WorkspaceUnavailable when it has no working installation."""
        if not self.distributed:
            return self.home
        if org is None or org == self._home_org:
            if self.home.token:
                return self.home
            org = self._home_org
        return self.for_token(self._token(org))

    @contextmanager
    def reaching(self, key: str) -> Iterator[tuple[WebClient, str]]:
        """The client and the bare id for a user or channel key (bot/identity.py). A call in
        the block that Slack answers with a dead token raises TokenChanged if the store holds
        a newer token, else WorkspaceUnavailable."""
        org, raw = split_key(key)
        client = self.for_org(org)
        try:
            yield client, raw
        except SlackApiError as error:
            if not self.distributed or not is_dead_token(error):
                raise
            self.forget(org)
            try:
                fresh = self.for_org(org)
            except WorkspaceUnavailable:
                fresh = None
            if fresh is not None and fresh.token != client.token:
                raise TokenChanged(org) from error
            raise WorkspaceUnavailable(org, str(error.response.get("error"))) from error

    def forget(self, org: str | None) -> None:
        """Drop what is known of `org`'s token (it was revoked or answered as dead); None is
        the vendor's workspace."""
        with self._lock:
            self._tokens.pop(org or self._home_org, None)

    def _token(self, org: str | None) -> str:
        now = time.monotonic()
        with self._lock:
            cached = self._tokens.get(org)
        if cached is not None and cached[0] > now:
            return cached[1]
        workspace = self._workspaces.of_org(org) if org and self._workspaces else None
        if workspace is None:
            raise WorkspaceUnavailable(org, "not installed, or uninstalled")
        token = self._bot_token(workspace)
        with self._lock:
            self._tokens[org] = (now + TOKEN_TTL_SECONDS, token)
        return token

    def _bot_token(self, workspace: WorkspaceView) -> str:
        assert self._store is not None
        bot = self._store.find_bot(
            enterprise_id=workspace.enterprise_id,
            team_id=workspace.team_id,
            is_enterprise_install=workspace.is_enterprise_install,
        )
        if bot is None or not bot.bot_token:
            raise WorkspaceUnavailable(workspace.org_id, "no bot token stored")
        if self._rotator is not None and bot.bot_refresh_token:
            try:
                fresh = self._rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=ROTATE_MINUTES_BEFORE_EXPIRY
                )
            except SlackApiError as error:
                raise WorkspaceUnavailable(workspace.org_id, "token refresh refused") from error
            if fresh is not None:
                self._store.save_bot(fresh)
                bot = fresh
        return bot.bot_token  # type: ignore[return-value]
