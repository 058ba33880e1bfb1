"""The web process's memory of installations (bot/slack/authorize.py): reused for a short
while, never after a write through it, never for rotating tokens."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.oauth.installation_store import Bot

from bot.slack.authorize import AuthTestAnswers, RecentBots


class Store:
    """An installation store that counts its reads; `bots` maps team id -> Bot."""

    def __init__(self) -> None:
        self.bots: dict[str, Bot] = {}
        self.reads = 0
        self.logger = None
        self.during_read: Any = None

    def find_bot(self, *, enterprise_id, team_id, is_enterprise_install=False):  # type: ignore[no-untyped-def]
        self.reads += 1
        bot = self.bots.get(team_id)
        if self.during_read is not None:
            self.during_read()
        return bot

    def delete_all(self, *, enterprise_id, team_id):  # type: ignore[no-untyped-def]
        self.bots.pop(team_id, None)

    def save_bot(self, bot: Bot) -> None:
        self.bots[bot.team_id] = bot


def bot(team: str, token: str, refresh: str | None = None) -> Bot:
    return Bot(
        team_id=team,
        bot_token=token,
        bot_id="B1",
        bot_user_id="UBOT",
        installed_at=0.0,
        bot_refresh_token=refresh,
        bot_token_expires_in=3600 if refresh else None,
    )


def find(bots: RecentBots, team: str) -> Bot | None:
    return bots.find_bot(enterprise_id=None, team_id=team)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bot_is_read_once_then_again_after_its_time():
    store, clock = Store(), Clock()
    store.bots["T1"] = bot("T1", "xoxb-1")
    bots = RecentBots(store, ttl=30, clock=clock)  # type: ignore[arg-type]
    assert find(bots, "T1").bot_token == find(bots, "T1").bot_token == "xoxb-1"
    assert store.reads == 1
    clock.now = 31
    find(bots, "T1")
    assert store.reads == 2


@pytest.mark.reliability("attack", "a request right after uninstall, the bot still remembered")
def test_uninstall_and_reinstall_through_it_count_at_once(tried):
    tried(2)
    store = Store()
    store.bots["T1"] = bot("T1", "xoxb-1")
    bots = RecentBots(store, ttl=30, clock=Clock())  # type: ignore[arg-type]
    find(bots, "T1")
    bots.delete_all(enterprise_id=None, team_id="T1")
    assert find(bots, "T1") is None
    bots.save_bot(bot("T1", "xoxb-2"))
    assert find(bots, "T1").bot_token == "xoxb-2"


def test_a_bot_read_while_it_was_deleted_is_not_kept():
    store = Store()
    store.bots["T1"] = bot("T1", "xoxb-1")
    bots = RecentBots(store, ttl=30, clock=Clock())  # type: ignore[arg-type]

    def uninstall_meanwhile() -> None:
        store.during_read = None
        bots.delete_all(enterprise_id=None, team_id="T1")

    store.during_read = uninstall_meanwhile
    assert find(bots, "T1").bot_token == "xoxb-1"  # read before the delete landed
    assert find(bots, "T1") is None


def test_rotating_tokens_are_read_every_time():
    store = Store()
    store.bots["T1"] = bot("T1", "xoxe.xoxb-1", refresh="xoxe-1")
    bots = RecentBots(store, ttl=30, clock=Clock())  # type: ignore[arg-type]
    find(bots, "T1")
    find(bots, "T1")
    assert store.reads == 2


def test_auth_test_answers_expire():
    clock = Clock()
    answers = AuthTestAnswers(ttl=600, clock=clock)
    answers["xoxb-1"] = "answer"
    assert "xoxb-1" in answers and answers["xoxb-1"] == "answer"
    clock.now = 601
    assert "xoxb-1" not in answers
