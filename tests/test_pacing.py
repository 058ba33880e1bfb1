"""A sweep that expires many preregistrations at once sends their notices at the pace Slack
allows (issue 17): no 429 from a Slack that enforces one message per second per channel with
a burst of 3, about as fast as that limit allows, and one busy channel holds up no other."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest

from bot.admin import Admin
from bot.clock import FixedClock, SystemClock
from bot.service import PreregistrationService
from store.db import Database
from store.migrate import upgrade
from tests.conftest import _migrated_pg_database
from tests.fakeslack import Call
from tests.helpers import form
from tests.slackapp import RunningApp

PER_SECOND = 1.0
BURST = 3
QUOTA = 100


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def paced_app(request, fake_slack, smtp_server, tmp_path) -> Iterator[RunningApp]:
    with ExitStack() as cleanup:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'paced.db'}"
            upgrade(url)
        else:
            request.getfixturevalue("pg_url")
            url = cleanup.enter_context(_migrated_pg_database("prereg_paced"))
        fake_slack.reset()
        if not smtp_server.running:
            smtp_server.start()
        app = RunningApp(url, fake_slack, smtp_server, tmp_path).start()
        cleanup.callback(app.stop)
        yield app


def expire_at_once(app: RunningApp, per_channel: dict[str, int]) -> float:
    """Partners whose notice channels are the keys, each with that many preregistrations
    made 16 days ago; all expired now in one go (as one sweep does). Returns when."""
    db = Database(app.db_url)
    try:
        then = FixedClock(datetime.now(UTC) - timedelta(days=16))
        admin, past = Admin(db, then), PreregistrationService(db, then)
        partners = [  # R4: at most 100 live preregistrations per partner
            (channel, start, min(QUOTA, count - start))
            for channel, count in per_channel.items()
            for start in range(0, count, QUOTA)
        ]
        for n, (channel, start, count) in enumerate(partners):
            member = f"UMEMBER{n}"
            admin.add_partner(f"Partner {n}", "DE", [member], contact_email=f"desk{n}@p.example")
            past.set_notice_channel(member, channel)
            for i in range(start, start + count):
                past.preregister(member, form(email=f"c{n}x{i}@customer.de", name=f"C {i}"))
        app.fake.rate_limit("chat.postMessage", PER_SECOND, BURST)
        started = time.monotonic()
        expired = PreregistrationService(db, SystemClock()).expire_due()
        assert len(expired) == sum(per_channel.values())
        return started
    finally:
        db.dispose()


def expiry_posts(app: RunningApp, channel: str) -> list[Call]:
    return [
        c
        for c in app.fake.calls_to("chat.postMessage")
        if c.args.get("channel") == channel and "expired" in str(c.args.get("text", ""))
    ]


def check_paced(app: RunningApp, per_channel: dict[str, int], started: float) -> None:
    # the limit's own time, with room for a loaded machine: what matters is no 429 and each once
    deadline = started + max(per_channel.values()) / PER_SECOND * 1.25 + 30
    while time.monotonic() < deadline:
        if all(len(expiry_posts(app, ch)) >= n for ch, n in per_channel.items()):
            break
        time.sleep(0.2)
    assert app.fake.rate_limited == [], f"{len(app.fake.rate_limited)} call(s) answered 429"
    for channel, count in per_channel.items():
        posts = expiry_posts(app, channel)
        keys = {c.json_arg("metadata")["event_payload"]["dedupe_key"] for c in posts}
        assert len(posts) == count == len(keys), (channel, len(posts), len(keys))
        span = posts[-1].at - posts[0].at
        allowed = (count - BURST) / PER_SECOND  # the burst at once, then one a second
        assert allowed * 0.95 <= span <= allowed * 1.1 + 3, (channel, span, allowed)


@pytest.mark.slow
@pytest.mark.reliability("load", "a burst of expiry notices paced to Slack's per-channel limit")
def test_a_burst_to_one_channel_is_paced_and_holds_up_no_other(paced_app, tried):
    per_channel = {"CBUSY": 30, "CQUIET": 5}
    tried(sum(per_channel.values()))
    started = expire_at_once(paced_app, per_channel)
    check_paced(paced_app, per_channel, started)
    quiet = expiry_posts(paced_app, "CQUIET")
    busy = expiry_posts(paced_app, "CBUSY")
    assert quiet[-1].at - started < 10, "the quiet channel waited behind the busy one"
    assert quiet[-1].at < busy[12].at


@pytest.mark.slow
@pytest.mark.reliability("load", "500 expiry notices at once, paced to Slack's limits")
def test_500_notices_are_paced_to_slacks_limits(paced_app, tried):
    per_channel = {"CONE": 167, "CTWO": 167, "CTHREE": 166}
    tried(sum(per_channel.values()))
    started = expire_at_once(paced_app, per_channel)
    check_paced(paced_app, per_channel, started)
