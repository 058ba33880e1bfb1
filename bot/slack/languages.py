"""The reader's language, from their Slack locale (`users.info` with `include_locale`).

Asked once per person and kept for a day, like the time zone of notices: a request answered
in its ack (a modal submission) uses what is known and never waits for Slack; work done after
the ack asks Slack first when the person is new.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.i18n import DEFAULT, from_slack_locale, set_language

log = logging.getLogger(__name__)

KEEP_SECONDS = 24 * 3600
MAX_PEOPLE = 50_000


class ReaderLanguages:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, str]] = {}

    def cached(self, key: str | None) -> str | None:
        if key is None:
            return None
        with self._lock:
            entry = self._known.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def remember(self, key: str, lang: str) -> None:
        with self._lock:
            if len(self._known) >= MAX_PEOPLE:
                self._known.clear()
            self._known[key] = (time.monotonic() + KEEP_SECONDS, lang)

    def ask_slack(self, key: str, client: Any, user_id: str) -> str:
        """The person's language from Slack (English when Slack cannot say), remembered."""
        try:
            user = client.users_info(user=user_id, include_locale=True).get("user") or {}
        except (SlackApiError, OSError) as error:
            log.warning("users.info for %s failed (%s): English", user_id, error)
            return DEFAULT
        lang = from_slack_locale(user.get("locale"))
        self.remember(key, lang)
        return lang

    def settle(self, context: Any) -> None:
        """In work after the ack: the reader's language for the rest of the request."""
        key = context.get("actor") if context is not None else None
        if key is None or self.cached(key) is not None:
            return
        user_id = context.actor_user_id or context.user_id
        client = context.get("client")
        if user_id and client is not None:
            set_language(self.ask_slack(key, client, user_id))
