"""Scheduled work end to end: `prereg-bot sweep --at ...` against the running app's database,
with the app's Slack Web API calls recorded by the fake. Expiry notices (R5) to a channel or
by DM, reminders in the member's time zone, review escalations (R3) threaded under the
request, the daily digest, retries (5xx, 429), restart safety and, on PostgreSQL, two sweep
processes over the same due work.

Everything here happens at least a week in the future of the real clock, so the running
app's own scheduler and delivery worker (real time) never see it: only these sweeps do.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.admin import Admin
from bot.clock import FixedClock
from bot.outbox.delivery import LEASE
from bot.service import PreregistrationService
from handlers.mrkdwn import format_when
from store import partners as partner_store
from store.db import Database
from store.models import Delivery, Preregistration
from tests.blockkit import assert_valid_message
from tests.fakeslack import Call
from tests.helpers import form
from tests.slackapp import BOT_TOKEN, MANAGER_CHANNEL

ACME, ACME2, BETA, GAMMA, MANAGER = "UACME1", "UACME2", "UBETA1", "UGAMMA1", "UMGR1"
FR_MOBILE = "+33 6 12 34 56 78"
DAY = timedelta(days=1)


def future_monday() -> datetime:
    """A Monday, 06:00 UTC, at least a week ahead of the real clock."""
    start = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0) + 7 * DAY
    return start + timedelta(days=(7 - start.weekday()) % 7)


@dataclass
class World:
    db: Database
    clock: FixedClock
    service: PreregistrationService
    admin: Admin

    def preregister(self, user: str = ACME, email: str = "ceo@customer.de", **kw):
        return self.service.preregister(user, form(email=email, **kw)).preregistration

    def delivery(self, key: str) -> Delivery:
        with self.db.session() as s:
            found = s.scalars(select(Delivery).where(Delivery.dedupe_key == key)).first()
            assert found is not None, key
            return found

    def prereg(self, pid: int) -> Preregistration:
        with self.db.session() as s:
            return s.get(Preregistration, pid)


def make_world(db_url: str) -> World:
    db = Database(db_url)
    clock = FixedClock(future_monday())
    return World(db, clock, PreregistrationService(db, clock), Admin(db, clock))


@pytest.fixture
def world(app) -> Iterator[World]:
    w = make_world(app.db_url)
    w.admin.add_partner("Acme", "DE", [ACME, ACME2], contact_email="desk@acme.example")
    w.admin.add_partner("Beta", "DE", [BETA], contact_email="desk@beta.example")
    w.admin.add_manager(MANAGER)
    yield w
    w.db.dispose()


def iso(at: datetime) -> str:
    return at.isoformat()


def kind_of(call: Call) -> str | None:
    metadata = call.json_arg("metadata") or {}
    return (metadata.get("event_payload") or {}).get("kind")


def key_of(call: Call) -> str | None:
    metadata = call.json_arg("metadata") or {}
    return (metadata.get("event_payload") or {}).get("dedupe_key")


def posts(fake, kind: str) -> list[Call]:
    """chat.postMessage calls carrying one of our notices of `kind` (failed attempts too)."""
    return [c for c in fake.calls_to("chat.postMessage") if kind_of(c) == kind]


def text_of(call: Call) -> str:
    return str(call.args.get("text")) + str(call.json_arg("blocks"))


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """`expired 1; reminders 0; ...; notices sent 2, retrying 0, failed 0` as a dict."""
    line = done.stdout.strip().splitlines()[-1]
    return {name.strip(): int(n) for name, n in re.findall(r"([a-z ]+) (\d+)", line)}


# --- R5: expiry and reminders ----------------------------------------------------------------


def test_r5_expiry_notice_goes_to_the_notice_channel_or_else_by_dm(app, world):
    world.service.set_notice_channel(ACME, "CACME")
    a = world.preregister(ACME, "alice@customer.de", name="Alice <!here>")
    b = world.preregister(BETA, "bob@customer.de")
    done = app.sweep(at=iso(a.expires_at + timedelta(seconds=30)))
    assert summary(done)["expired"] == 2
    sent = {c.args["channel"]: c for c in posts(app.fake, "expired")}
    assert set(sent) == {"CACME", BETA}  # Acme's channel; Beta has none: DM to the submitter
    assert "alice@customer.de" in text_of(sent["CACME"])
    assert "Alice &lt;!here&gt;" in text_of(sent["CACME"]) and "<!here>" not in text_of(
        sent["CACME"]
    )
    assert "bob@customer.de" in text_of(sent[BETA])
    for call in sent.values():
        assert_valid_message({"text": call.args["text"], "blocks": call.json_arg("blocks")})
    assert world.prereg(a.id).status == "expired" and world.prereg(b.id).status == "expired"

    again = app.sweep(at=iso(a.expires_at + timedelta(minutes=5)))
    assert summary(again)["expired"] == 0
    assert len(posts(app.fake, "expired")) == 2
    # The customer is free again for anyone.
    world.clock.set(a.expires_at + timedelta(minutes=5))
    assert world.preregister(BETA, "alice@customer.de").status == "preregistered"


def test_r5_reminder_shows_the_expiry_in_the_members_time_zone(app, world):
    app.fake.user_tz[ACME] = ("Europe/Berlin", 3600)
    p = world.preregister(ACME)
    done = app.sweep(at=iso(p.expires_at - 3 * DAY + timedelta(minutes=1)))
    assert summary(done)["reminders"] == 1
    [reminder] = posts(app.fake, "expiry_reminder")
    assert reminder.args["channel"] == ACME
    text = text_of(reminder)
    assert format_when(p.expires_at, "Europe/Berlin") in text
    assert re.search(r"\d{2}:\d{2} CES?T", text)  # Berlin time, not UTC
    assert "within *3 days*" in text and "/preregister list" in text
    assert any(c.args.get("user") == ACME for c in app.fake.calls_to("users.info"))

    app.sweep(at=iso(p.expires_at - 3 * DAY + timedelta(hours=1)))
    assert len(posts(app.fake, "expiry_reminder")) == 1
    app.sweep(at=iso(p.expires_at - DAY + timedelta(minutes=1)))
    reminders = posts(app.fake, "expiry_reminder")
    assert len(reminders) == 2 and "within *1 day*" in text_of(reminders[1])


# --- R3: review escalations ------------------------------------------------------------------


def test_r3_review_escalations_go_to_managers_threaded_under_the_request(app, world):
    p = world.preregister(ACME, "ceo@customer.fr", mobile=FR_MOBILE)
    assert p.status == "under_review"
    world.service.set_review_message(p.id, MANAGER_CHANNEL, "1700000000.000999")
    due = p.review_due_at

    done = app.sweep(at=iso(due - timedelta(hours=2)))
    assert summary(done)["review due soon"] == 1
    ts = world.prereg(p.id).review_message_ts
    [soon] = posts(app.fake, "review_due_soon")
    assert (soon.args["channel"], soon.args["thread_ts"]) == (MANAGER_CHANNEL, ts)
    assert "ceo@customer.fr" in text_of(soon) and "due by" in text_of(soon)

    done = app.sweep(at=iso(due + timedelta(minutes=1)))
    assert summary(done)["review overdue"] == 1
    app.sweep(at=iso(due + timedelta(hours=3)))
    [overdue] = posts(app.fake, "review_overdue")
    assert (overdue.args["channel"], overdue.args["thread_ts"]) == (MANAGER_CHANNEL, ts)
    assert overdue.args.get("reply_broadcast") is True
    assert "overdue" in text_of(overdue)
    assert len(posts(app.fake, "review_due_soon")) == 1
    assert_valid_message({"text": overdue.args["text"], "blocks": overdue.json_arg("blocks")})


# --- the daily digest ------------------------------------------------------------------------


def test_daily_digest_to_the_digest_channel_or_each_member_once_a_day(app, world):
    world.admin.add_partner("Gamma", "DE", [GAMMA], contact_email="desk@gamma.example")
    with world.db.session() as s:
        partner_store.set_digest_channel(s, 2, "CBETADIGEST")
    world.preregister(ACME, "acme-customer@customer.de")
    world.preregister(ACME, "acme-review@customer.fr", mobile=FR_MOBILE)
    world.preregister(BETA, "beta-customer@customer.de")
    nine_am = world.clock.now() + 9 * DAY + timedelta(hours=3)  # 6 days before the expiry

    done = app.sweep(at=iso(nine_am))
    assert summary(done)["digests"] == 3  # one per partner, Gamma included
    digests = posts(app.fake, "digest")
    # Beta: its digest channel. Acme: no channel, a DM to each member. Gamma: nothing to say.
    assert sorted(c.args["channel"] for c in digests) == sorted(["CBETADIGEST", ACME, ACME2])
    acme = next(c for c in digests if c.args["channel"] == ACME)
    assert "acme-customer@customer.de" in text_of(acme) and "acme-review@customer.fr" in text_of(
        acme
    )
    assert "beta-customer" not in text_of(acme)
    for call in digests:
        assert_valid_message({"text": call.args["text"], "blocks": call.json_arg("blocks")})

    app.sweep(at=iso(nine_am + timedelta(hours=5)))
    assert len(posts(app.fake, "digest")) == 3
    app.sweep(at=iso(nine_am + DAY))
    assert len(posts(app.fake, "digest")) == 6  # the next day's


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.reliability("fault", "Slack answers 500 to outbox notices")
def test_failed_posts_are_retried_with_backoff_and_sent_exactly_once(app, world, tried):
    tried(3)
    p = world.preregister(ACME)
    key = f"expired:{p.id}"
    app.fake.fail("chat.postMessage", 500, times=3)  # the client's own 2 retries fail too
    at = p.expires_at + timedelta(seconds=30)
    assert summary(app.sweep(at=iso(at)))["retrying"] == 1
    assert len(posts(app.fake, "expired")) == 3
    assert world.delivery(key).status == "pending"

    app.sweep(at=iso(at + timedelta(seconds=10)))  # backoff (30 s) not over yet
    assert len(posts(app.fake, "expired")) == 3
    assert summary(app.sweep(at=iso(at + timedelta(minutes=1))))["notices sent"] >= 1
    app.sweep(at=iso(at + timedelta(hours=1)))
    assert len(posts(app.fake, "expired")) == 4  # 3 refused + 1 delivered, never again
    row = world.delivery(key)
    assert (row.status, row.attempts) == ("sent", 2)


@pytest.mark.reliability("fault", "Slack answers 429 with Retry-After to outbox notices")
def test_rate_limited_posts_honour_retry_after_then_the_outbox_retries(app, world, tried):
    tried(3)
    p = world.preregister(ACME)
    app.fake.fail("chat.postMessage", 429, retry_after=1, times=3)
    at = p.expires_at + timedelta(seconds=30)
    assert summary(app.sweep(at=iso(at)))["retrying"] == 1
    calls = posts(app.fake, "expired")
    assert len(calls) == 3
    assert all(b.at - a.at >= 0.9 for a, b in zip(calls, calls[1:], strict=False))
    app.sweep(at=iso(at + timedelta(minutes=1)))
    app.sweep(at=iso(at + timedelta(minutes=2)))
    assert len(posts(app.fake, "expired")) == 4
    assert world.delivery(f"expired:{p.id}").status == "sent"


# --- restart safety --------------------------------------------------------------------------


@pytest.mark.reliability("fault", "sweep process killed (SIGKILL) mid-run")
def test_sweep_killed_after_claiming_is_completed_by_the_next_run_without_replay(app, world, tried):
    tried(1)
    p = world.preregister(ACME)
    key = f"expired:{p.id}"
    at = p.expires_at + timedelta(seconds=30)
    app.fake.slow["users.info"] = 5.0  # the sender looks up the member's zone before posting
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.entry.cli", "sweep", "--at", iso(at), "--yes"],
        env=app.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while world_claim(world, key) is None:
            assert time.monotonic() < deadline, "the sweep never claimed the notice"
            assert proc.poll() is None, "the sweep ended before it was killed"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(10)
    app.fake.slow.clear()
    assert posts(app.fake, "expired") == []
    assert world.prereg(p.id).status == "expired"  # the expiry itself was committed

    # Within the dead process's lease nothing is sent twice; after it, the notice goes out once.
    within = at + LEASE - timedelta(seconds=5)  # LEASE is seconds now, not minutes (issue 12)
    assert summary(app.sweep(at=iso(within)))["notices sent"] == 0
    assert posts(app.fake, "expired") == []
    app.sweep(at=iso(at + LEASE + timedelta(minutes=1)))
    app.sweep(at=iso(at + LEASE + timedelta(minutes=2)))
    assert len(posts(app.fake, "expired")) == 1
    assert world.delivery(key).status == "sent"


def world_claim(world: World, key: str) -> datetime | None:
    with world.db.session() as s:
        row = s.scalars(select(Delivery).where(Delivery.dedupe_key == key)).first()
        return row.claimed_until if row is not None else None


@pytest.mark.reliability("fault", "app restarted between sweeps")
def test_app_restart_loses_nothing_replays_nothing_and_catches_up(app, world, running_app, tried):
    tried(1)
    p = world.preregister(ACME)
    review = world.preregister(BETA, "ceo@customer.fr", mobile=FR_MOBILE)
    first = p.expires_at - 3 * DAY + timedelta(minutes=1)
    app.sweep(at=iso(first))
    assert len(posts(app.fake, "expiry_reminder")) == 1
    assert len(posts(app.fake, "review_overdue")) == 1  # due on Wednesday, now Saturday

    running_app.stop()
    running_app.start()
    app.sweep(at=iso(first))  # the same instant again: nothing is sent twice
    assert len(posts(app.fake, "expiry_reminder")) == 1
    # Down until after the expiry: the missed 1-day reminder is moot, the expiry goes out.
    done = app.sweep(at=iso(p.expires_at + timedelta(hours=1)))
    assert summary(done)["expired"] == 1 and summary(done)["reminders"] == 0
    assert len(posts(app.fake, "expired")) == 1
    assert len(posts(app.fake, "expiry_reminder")) == 1
    assert len(posts(app.fake, "review_overdue")) == 1
    assert world.prereg(review.id).status == "under_review"


# --- two sweep processes on one PostgreSQL ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.reliability("load", "two sweep processes over the same due work")
def test_two_sweep_processes_at_once_send_each_notice_exactly_once(pg_only_url, fake_slack, tried):
    tried(2)
    fake_slack.reset()
    fake_slack.latency = 0.005
    w = make_world(pg_only_url)
    base = w.clock.now()
    partners = 30
    try:
        for i in range(partners):
            w.admin.add_partner(f"P{i}", "DE", [f"UPAR{i:03d}"], contact_email="d@example.com")
        for i in range(partners):
            user = f"UPAR{i:03d}"
            w.preregister(user, f"a{i}@customer.de")
            w.preregister(user, f"b{i}@customer.de")
            w.preregister(user, f"r{i}@customer.fr", mobile=FR_MOBILE)
        w.clock.set(base + 3 * DAY + timedelta(hours=1))  # expires within 3 days of `at`
        for i in range(partners):
            w.preregister(f"UPAR{i:03d}", f"c{i}@customer.de")
        at = base + 15 * DAY + timedelta(hours=3)  # 09:00: after expiry, digest hour passed
        env = {
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": pg_only_url,
            "SLACK_API_URL": fake_slack.url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "MANAGER_CHANNEL_ID": MANAGER_CHANNEL,
        }
        command = [sys.executable, "-m", "bot.entry.cli", "sweep", "--at", iso(at), "--yes"]
        procs = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        outputs = [proc.communicate(timeout=120) for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], outputs
        reports = [summary(subprocess.CompletedProcess([], 0, out.decode())) for out, _ in outputs]

        totals = Counter()
        for report in reports:
            totals.update(report)
        assert totals["expired"] == 2 * partners
        assert totals["reminders"] == partners
        assert totals["review overdue"] == partners
        assert totals["digests"] == partners

        ours = [c for c in fake_slack.calls_to("chat.postMessage") if key_of(c)]
        per_key = Counter(key_of(c) for c in ours)
        assert per_key and max(per_key.values()) == 1, per_key.most_common(3)
        kinds = Counter(kind_of(c) for c in ours)
        assert kinds == {
            "expired": 2 * partners,
            "expiry_reminder": partners,
            "review_overdue": partners,
            "digest": partners,  # one DM per partner's single member
        }
        with w.db.session() as s:
            sent = s.scalars(select(Delivery.dedupe_key).where(Delivery.status == "sent")).all()
        assert set(per_key) <= set(sent)
        assert sum(r["notices sent"] for r in reports) == len(sent)
        # They really overlapped: each process did part of the due work (expiries commit one
        # row at a time, so one process may spend its pass expiring while the other sends).
        assert all(sum(r.values()) > 0 for r in reports), reports
        assert all(0 < r["expired"] < 2 * partners for r in reports) or all(
            r["notices sent"] > 0 for r in reports
        ), reports
    finally:
        fake_slack.latency = 0.0
        w.db.dispose()
