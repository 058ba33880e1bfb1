"""The rules of scheduled work with an injected clock: expiry reminders (R5), review
escalations (R3), the daily digest, catch-up after downtime and no double records.
Also the Block Kit of every scheduled notice and the senders' routing, without Slack."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot import notices
from bot.clock import FixedClock
from bot.desk import Desk
from bot.models import PreregView
from bot.outbox.delivery import Job
from bot.rules import RuleSettings
from bot.schedule import (
    ScheduledWork,
    SchedulePolicy,
    digest_day,
    most_urgent_reminder,
    reminder_windows,
)
from bot.service import PreregistrationService
from bot.settings import Settings
from bot.slack.languages import ReaderLanguages
from bot.slack.workspaces import SlackClients
from handlers.mrkdwn import format_when
from handlers.reminder_views import (
    digest_message,
    expired_message,
    reminder_message,
    review_due_soon_message,
    review_overdue_message,
)
from handlers.reminders import ReminderSenders
from store import partners as partner_store
from store.models import Delivery
from tests.blockkit import assert_valid_message
from tests.conftest import T0
from tests.helpers import add_partner, form

ACME = "UACME1"
ACME2 = "UACME2"
BETA = "UBETA1"
FR_MOBILE = "+33 6 12 34 56 78"
DAY = timedelta(days=1)


@pytest.fixture
def partners(admin):
    admin.add_partner("Acme", "DE", [ACME, ACME2], contact_email="desk@acme.example")
    add_partner(admin, "Beta", BETA)


@pytest.fixture
def work(db, clock) -> ScheduledWork:
    return ScheduledWork(db, clock, SchedulePolicy())


def recorded(db, kind: str | None = None) -> list[str]:
    with db.session() as s:
        stmt = select(Delivery.dedupe_key).order_by(Delivery.id)
        if kind:
            stmt = stmt.where(Delivery.kind == kind)
        return list(s.scalars(stmt))


def preregister(service, user=ACME, email="ceo@customer.de", **kw) -> PreregView:
    return service.preregister(user, form(email=email, **kw)).preregistration


# --- pure rules ------------------------------------------------------------------------------


def test_r5_most_urgent_reminder_is_the_fewest_days_already_reached():
    expires = T0 + 15 * DAY
    days = (1, 3)
    assert most_urgent_reminder(expires, expires - 3 * DAY - timedelta(seconds=1), days) is None
    assert most_urgent_reminder(expires, expires - 3 * DAY, days) == 3
    assert most_urgent_reminder(expires, expires - 2 * DAY, days) == 3
    assert most_urgent_reminder(expires, expires - DAY, days) == 1
    assert most_urgent_reminder(expires, expires - timedelta(seconds=1), days) == 1
    assert most_urgent_reminder(expires, expires, days) is None  # expired: nothing


def test_r5_reminder_windows_are_disjoint_and_most_urgent_first():
    assert reminder_windows(T0, (3, 1)) == [(1, T0, T0 + DAY), (3, T0 + DAY, T0 + 3 * DAY)]


def test_digest_day_starts_at_the_configured_utc_hour():
    assert digest_day(datetime(2026, 11, 24, 7, 59, tzinfo=UTC), 8) is None
    assert digest_day(datetime(2026, 11, 24, 8, 0, tzinfo=UTC), 8) == date(2026, 11, 24)
    assert digest_day(datetime(2026, 11, 24, 23, 59, tzinfo=UTC), 8) == date(2026, 11, 24)


def test_policy_reads_settings_and_ignores_non_positive_days():
    settings = Settings.from_env(
        {"PREREG_REMINDER_DAYS": "0,5,2", "PREREG_REVIEW_DUE_SOON_HOURS": "6"}
    )
    policy = SchedulePolicy.from_settings(settings)
    assert policy.days == (2, 5)
    assert policy.review_due_soon == timedelta(hours=6)


# --- R5: reminders before expiry -------------------------------------------------------------


def test_r5_reminders_3_days_and_1_day_before_expiry_once_each(service, partners, work, db):
    p = preregister(service)
    expires = p.expires_at
    assert work.enqueue_due(expires - 3 * DAY - timedelta(seconds=1)).reminders == 0
    assert work.enqueue_due(expires - 3 * DAY).reminders == 1
    assert work.enqueue_due(expires - 3 * DAY + timedelta(hours=1)).reminders == 0
    assert work.enqueue_due(expires - DAY - timedelta(seconds=1)).reminders == 0
    assert work.enqueue_due(expires - DAY).reminders == 1
    assert work.enqueue_due(expires - timedelta(minutes=1)).reminders == 0
    assert recorded(db, notices.EXPIRY_REMINDER) == [
        f"expiry_reminder:{p.id}:3",
        f"expiry_reminder:{p.id}:1",
    ]
    with db.session() as s:
        payloads = [d.payload for d in s.scalars(select(Delivery).order_by(Delivery.id))]
    assert {"preregistration_id": p.id, "days_before": 1} in payloads


def test_r5_catch_up_after_downtime_sends_only_the_most_urgent_reminder(
    service, partners, work, db
):
    p = preregister(service)
    # The process was down from before the 3-day mark until 12 hours before expiry.
    report = work.enqueue_due(p.expires_at - timedelta(hours=12))
    assert report.reminders == 1
    assert recorded(db, notices.EXPIRY_REMINDER) == [f"expiry_reminder:{p.id}:1"]
    assert work.enqueue_due(p.expires_at - timedelta(hours=11)).reminders == 0


def test_r5_no_reminder_for_rows_already_expired_deleted_or_associated(service, partners, work, db):
    lapsed = preregister(service, email="lapsed@customer.de")
    deleted = preregister(service, email="deleted@customer.de")
    associated = preregister(service, email="assoc@customer.de")
    service.delete(ACME, [deleted.id])
    service.associate(associated.id, associated.email)
    # Past expiry but not yet expired by the sweep: too late to remind.
    assert work.enqueue_due(lapsed.expires_at + timedelta(minutes=1)).reminders == 0
    assert work.enqueue_due(lapsed.expires_at - DAY).reminders == 1  # only `lapsed`
    assert recorded(db, notices.EXPIRY_REMINDER) == [f"expiry_reminder:{lapsed.id}:1"]


def test_r5_configured_reminder_days_are_used(db, clock, service, partners):
    work = ScheduledWork(db, clock, SchedulePolicy(reminder_days=(7, 2)))
    p = preregister(service)
    assert work.enqueue_due(p.expires_at - 7 * DAY).reminders == 1
    assert work.enqueue_due(p.expires_at - 3 * DAY).reminders == 0
    assert work.enqueue_due(p.expires_at - 2 * DAY).reminders == 1
    assert recorded(db, notices.EXPIRY_REMINDER) == [
        f"expiry_reminder:{p.id}:7",
        f"expiry_reminder:{p.id}:2",
    ]


def test_r5_reminders_count_calendar_days_holidays_are_irrelevant(db, clock, partners):
    expires = T0 + 15 * DAY  # Tue 8 Dec 2026
    holidays = frozenset({(expires - 3 * DAY).date(), (expires - DAY).date()})
    service = PreregistrationService(db, clock, RuleSettings(holidays=holidays))
    p = preregister(service)
    assert p.expires_at == expires
    work = ScheduledWork(db, clock)
    assert work.enqueue_due(expires - 3 * DAY).reminders == 1  # a holiday, still on time
    assert work.enqueue_due(expires - DAY).reminders == 1


def test_r5_many_due_rows_are_recorded_across_batches(db, clock, admin):
    for i in range(7):
        admin.add_partner(f"P{i}", "DE", [f"UBATCH{i}"], contact_email="d@example.com")
    service = PreregistrationService(db, clock)
    for i in range(7):
        preregister(service, user=f"UBATCH{i}", email=f"c{i}@customer.de")
    work = ScheduledWork(db, clock, batch=3)
    assert work.enqueue_due(T0 + 12 * DAY).reminders == 7
    assert work.enqueue_due(T0 + 12 * DAY).reminders == 0


def test_r5_a_second_run_or_a_second_worker_records_nothing_twice(db, clock, service, partners):
    p = preregister(service)
    review = preregister(service, email="fr@customer.fr", mobile=FR_MOBILE)
    now = p.expires_at - DAY
    first = ScheduledWork(db, clock).enqueue_due(now)
    other_process = ScheduledWork(db, FixedClock(now)).enqueue_due(now)
    assert (first.reminders, first.review_overdue) == (1, 1)
    assert (other_process.reminders, other_process.review_overdue) == (0, 0)
    assert recorded(db, notices.EXPIRY_REMINDER) == [f"expiry_reminder:{p.id}:1"]
    assert f"review_overdue:{review.id}" in recorded(db)


# --- R3: review deadline ---------------------------------------------------------------------


def test_r3_review_due_soon_within_4_hours_then_overdue(service, partners, work, db):
    p = preregister(service, mobile=FR_MOBILE)
    due = p.review_due_at
    assert due == T0 + 2 * DAY
    assert work.enqueue_due(due - timedelta(hours=4, seconds=1)).review_due_soon == 0
    assert work.enqueue_due(due - timedelta(hours=4)).review_due_soon == 1
    report = work.enqueue_due(due - timedelta(hours=1))
    assert (report.review_due_soon, report.review_overdue) == (0, 0)
    assert work.enqueue_due(due).review_overdue == 1
    assert work.enqueue_due(due + DAY).review_overdue == 0
    assert recorded(db, notices.REVIEW_DUE_SOON) == [f"review_due_soon:{p.id}"]
    assert recorded(db, notices.REVIEW_OVERDUE) == [f"review_overdue:{p.id}"]


def test_r3_review_found_overdue_after_downtime_gets_only_the_overdue_notice(
    service, partners, work, db
):
    p = preregister(service, mobile=FR_MOBILE)
    report = work.enqueue_due(p.review_due_at + DAY)
    assert (report.review_due_soon, report.review_overdue) == (0, 1)
    assert work.enqueue_due(p.review_due_at + DAY).review_due_soon == 0
    assert recorded(db, notices.REVIEW_DUE_SOON) == []


def test_r3_decided_review_is_not_escalated(service, partners, work, admin, db):
    admin.add_manager("UMGR1")
    p = preregister(service, mobile=FR_MOBILE)
    service.approve("UMGR1", p.id)
    report = work.enqueue_due(p.review_due_at + DAY)
    assert (report.review_due_soon, report.review_overdue) == (0, 0)


def test_r3_a_request_sent_back_and_resubmitted_gets_its_renewed_deadline_noticed_once(
    db, clock, service, partners, work, admin
):
    """The renewed deadline after a resubmission is noticed (due soon, then overdue) once, as
    the first one was. Before: the keys were per request, so the first round's notices
    silenced the second round's."""
    admin.add_manager("UMGR1")
    desk = Desk(service)
    p = preregister(service, mobile=FR_MOBILE)
    assert work.enqueue_due(p.review_due_at - timedelta(hours=1)).review_due_soon == 1
    assert work.enqueue_due(p.review_due_at + timedelta(hours=1)).review_overdue == 1

    clock.set(p.review_due_at + timedelta(hours=2))
    desk.send_back("UMGR1", p.id, "Which company is this for?")
    clock.set(p.review_due_at + DAY)
    again = desk.resubmit(ACME, p.id, form(email="ceo@customer.de", mobile=FR_MOBILE), "Acme")
    assert again.status == "under_review" and again.review_due_at > p.review_due_at
    due = again.review_due_at
    assert work.enqueue_due(clock.now()).review_overdue == 0  # the new deadline is ahead

    soon = [work.enqueue_due(due - timedelta(hours=h)).review_due_soon for h in (3, 1)]
    overdue = [work.enqueue_due(due + timedelta(hours=h)).review_overdue for h in (1, 5)]
    assert (soon, overdue) == ([1, 0], [1, 0])
    assert len(recorded(db, notices.REVIEW_DUE_SOON)) == 2
    assert len(recorded(db, notices.REVIEW_OVERDUE)) == 2


def test_r3_due_soon_hours_are_configurable(db, clock, service, partners):
    work = ScheduledWork(db, clock, SchedulePolicy(review_due_soon=timedelta(hours=24)))
    p = preregister(service, mobile=FR_MOBILE)
    assert work.enqueue_due(p.review_due_at - timedelta(hours=23)).review_due_soon == 1


# --- the daily digest ------------------------------------------------------------------------


def test_digest_once_per_partner_per_utc_day_after_the_digest_hour(service, partners, work, db):
    preregister(service)
    tuesday = datetime(2026, 11, 24, tzinfo=UTC)
    assert work.enqueue_due(tuesday + timedelta(hours=7, minutes=59)).digests == 0
    assert work.enqueue_due(tuesday + timedelta(hours=8)).digests == 2  # Acme and Beta
    assert work.enqueue_due(tuesday + timedelta(hours=20)).digests == 0
    # Down all of Wednesday: Thursday's run records Thursday's digest, not Wednesday's.
    assert work.enqueue_due(tuesday + 2 * DAY + timedelta(hours=9)).digests == 2
    keys = recorded(db, notices.DIGEST)
    assert keys == ["digest:1:2026-11-24", "digest:2:2026-11-24"] + [
        "digest:1:2026-11-26",
        "digest:2:2026-11-26",
    ]


def test_digest_content_expiring_this_week_under_review_and_counts(service, partners, clock, work):
    soon = preregister(service, email="soon@customer.de")
    clock.advance(5 * DAY)
    later = preregister(service, email="later@customer.de")
    review = preregister(service, email="review@customer.fr", mobile=FR_MOBILE)
    gone = preregister(service, email="gone@customer.de")
    service.delete(ACME, [gone.id])
    as_of = T0 + 9 * DAY  # `soon` expires in 6 days, `later` in 11
    digest = work.digest(1, as_of.date(), as_of)
    assert digest is not None and not digest.is_empty
    assert [p.id for p in digest.expiring] == [soon.id]
    assert digest.expiring_total == 1
    assert [p.id for p in digest.under_review] == [review.id]
    assert digest.counts == {"preregistered": 2, "under_review": 1, "deleted": 1}
    assert later.id not in [p.id for p in digest.expiring]
    message = digest_message(digest, "Europe/Berlin")
    assert_valid_message(message)
    text = str(message["blocks"])
    assert "soon@customer.de" in text and "review@customer.fr" in text
    assert "later@customer.de" not in text
    assert "Preregistered 2" in text and "Under review 1" in text and "Deleted 1" in text
    assert format_when(soon.expires_at, "Europe/Berlin") in text
    assert "/preregister list" in text


def test_digest_of_a_partner_with_nothing_live_is_empty(service, partners, work):
    digest = work.digest(2, T0.date(), T0)
    assert digest is not None and digest.is_empty


def test_digest_lists_at_most_ten_and_counts_the_rest(db, clock, admin):
    admin.add_partner("Big", "DE", ["UBIG1"], contact_email="d@example.com")
    service = PreregistrationService(db, clock)
    for i in range(13):
        preregister(service, user="UBIG1", email=f"n{i}@customer.de", name=f"<!channel> {i}")
    digest = ScheduledWork(db, clock).digest(1, T0.date(), T0 + 10 * DAY)
    assert len(digest.expiring) == 10 and digest.expiring_total == 13
    message = digest_message(digest, None)
    assert_valid_message(message)
    assert "3 more" in str(message["blocks"])
    assert "<!channel>" not in str(message) and "&lt;!channel&gt;" in str(message["blocks"])


def test_digest_fan_out_records_one_dm_per_member_once(service, partners, work, db):
    day = T0.date()
    assert work.fan_out_digest(1, day, T0) == [ACME, ACME2]
    assert work.fan_out_digest(1, day, T0) == [ACME, ACME2]
    assert recorded(db, notices.DIGEST) == [
        f"digest:1:{day.isoformat()}:{ACME}",
        f"digest:1:{day.isoformat()}:{ACME2}",
    ]


# --- Block Kit of each notice ----------------------------------------------------------------


def _view(**overrides: Any) -> PreregView:
    base = {
        "id": 7,
        "partner_id": 1,
        "partner_name": "Acme <GmbH>",
        "full_name": "<!channel> & <https://evil|x>",
        "email": "ceo@customer.de",
        "mobile": "+4915123456789",
        "send_invitation": True,
        "association_type": "reseller",
        "status": "preregistered",
        "customer_country": "FR",
        "partner_country": "DE",
        "review_reason": "Country <FR> differs",
        "submitted_by": ACME,
        "submitted_at": T0,
        "review_due_at": T0 + 2 * DAY,
        "decided_at": None,
        "decided_by": None,
        "decision_reason": None,
        "expires_at": T0 + 15 * DAY,
        "associated_at": None,
        "deleted_at": None,
        "invited_at": None,
        "review_channel_id": None,
        "review_message_ts": None,
    }
    base.update(overrides)
    return PreregView(**base)


@pytest.mark.parametrize(
    "message",
    [
        expired_message(_view(status="expired"), "Europe/Berlin"),
        reminder_message(_view(), 3, "America/New_York"),
        reminder_message(_view(send_invitation=False), 1, None),
        review_due_soon_message(_view(status="under_review")),
        review_overdue_message(_view(status="under_review"), threaded=True),
        review_overdue_message(_view(status="under_review"), threaded=False),
    ],
)
def test_notices_are_valid_block_kit_and_escape_user_text(message):
    assert_valid_message(message)
    everything = str(message)
    assert "<!channel>" not in everything and "<https://evil" not in everything
    assert "&lt;!channel&gt; &amp; &lt;https://evil|x&gt;" in everything


def test_r5_reminder_shows_expiry_in_the_members_zone_and_how_to_list():
    p = _view()
    berlin = reminder_message(p, 3, "Europe/Berlin")
    assert "Tue 8 Dec 2026, 11:00 CET" in str(berlin["blocks"])
    assert "within *3 days*" in str(berlin["blocks"])
    assert "/preregister list" in str(berlin["blocks"])
    assert "Tue 8 Dec 2026, 10:00 UTC" in str(reminder_message(p, 1, None)["blocks"])
    assert "within *1 day*" in str(reminder_message(p, 1, None)["blocks"])


# --- the senders' routing, with a stand-in Web API client ------------------------------------


class StubClient:
    def __init__(self, fail: dict[str, str] | None = None, tz: str | None = "Asia/Tokyo"):
        self.posts: list[dict[str, Any]] = []
        self.fail = dict(fail or {})  # channel -> Slack error
        self.tz = tz

    def users_info(self, user: str, include_locale: bool = False) -> dict[str, Any]:
        if self.tz is None:
            raise SlackApiError("boom", {"ok": False, "error": "user_not_visible"})
        return {"ok": True, "user": {"id": user, "tz": self.tz}}

    def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:  # noqa: N802 - slack-sdk's name
        self.posts.append(kwargs)
        error = self.fail.get(kwargs["channel"])
        if error:
            raise SlackApiError(error, {"ok": False, "error": error})
        return {"ok": True, "channel": kwargs["channel"], "ts": "1.1"}


class StubServices:
    def __init__(self, db, clock, service, client, manager_channel="CMANAGERS"):
        self.db, self.clock, self.service, self.client = db, clock, service, client
        self.slack = SlackClients(lambda _token: client, None)  # single-workspace mode
        self.languages = ReaderLanguages()
        self.settings = Settings(manager_channel_id=manager_channel)
        self.kicked = 0
        self.deliverer = self

    def kick(self) -> None:
        self.kicked += 1


def _job(kind: str, payload: dict[str, Any], key: str = "k") -> Job:
    return Job(1, kind, key, payload, 1, payload.get("preregistration_id"))


def test_r5_partner_notice_goes_to_the_notice_channel_else_dm(db, clock, service, partners):
    client = StubClient()
    senders = ReminderSenders(StubServices(db, clock, service, client), ScheduledWork(db, clock))
    p = preregister(service)
    job = _job(notices.EXPIRY_REMINDER, {"preregistration_id": p.id, "days_before": 3})
    senders.expiry_reminder(job)
    service.set_notice_channel(ACME, "CACME")
    senders.expiry_reminder(job)
    assert [post["channel"] for post in client.posts] == [ACME, "CACME"]
    assert "JST" in str(client.posts[0]["blocks"])  # the member's own zone
    assert client.posts[0]["metadata"]["event_payload"] == {
        "kind": "expiry_reminder",
        "dedupe_key": "k",
    }


def test_r5_unusable_notice_channel_falls_back_to_dm_and_unknown_tz_to_utc(
    db, clock, service, partners
):
    client = StubClient(fail={"CGONE": "not_in_channel"}, tz=None)
    senders = ReminderSenders(StubServices(db, clock, service, client), ScheduledWork(db, clock))
    p = preregister(service)
    service.set_notice_channel(ACME, "CGONE")
    result = senders.expired(_job(notices.EXPIRED, {"preregistration_id": p.id}))
    assert result["channel"] == ACME
    assert [post["channel"] for post in client.posts] == ["CGONE", ACME]
    assert "UTC" in str(client.posts[-1]["blocks"])


def test_r5_reminder_for_a_row_no_longer_valid_is_skipped(db, clock, service, partners):
    client = StubClient()
    senders = ReminderSenders(StubServices(db, clock, service, client), ScheduledWork(db, clock))
    p = preregister(service)
    service.delete(ACME, [p.id])
    result = senders.expiry_reminder(
        _job(notices.EXPIRY_REMINDER, {"preregistration_id": p.id, "days_before": 1})
    )
    assert "skipped" in result and client.posts == []


def test_r3_overdue_is_threaded_under_the_request_or_unthreaded_without_it(
    db, clock, service, partners
):
    client = StubClient()
    senders = ReminderSenders(StubServices(db, clock, service, client), ScheduledWork(db, clock))
    p = preregister(service, mobile=FR_MOBILE)
    job = _job(notices.REVIEW_OVERDUE, {"preregistration_id": p.id})
    senders.review_overdue(job)
    service.set_review_message(p.id, "CMANAGERS", "1700000000.000200")
    senders.review_overdue(job)
    unthreaded, threaded = client.posts
    assert unthreaded["channel"] == "CMANAGERS" and "thread_ts" not in unthreaded
    assert threaded["channel"] == "CMANAGERS"
    assert threaded["thread_ts"] == "1700000000.000200"
    assert threaded["reply_broadcast"] is True


def test_r3_due_soon_after_the_deadline_or_decision_is_skipped(db, clock, service, partners):
    client = StubClient()
    services = StubServices(db, clock, service, client)
    senders = ReminderSenders(services, ScheduledWork(db, clock))
    p = preregister(service, mobile=FR_MOBILE)
    clock.set(p.review_due_at + timedelta(minutes=1))
    result = senders.review_due_soon(_job(notices.REVIEW_DUE_SOON, {"preregistration_id": p.id}))
    assert result == {"skipped": "already overdue"} and client.posts == []


def test_digest_goes_to_digest_channel_then_notice_channel_then_member_dms(
    db, clock, service, partners
):
    client = StubClient()
    services = StubServices(db, clock, service, client)
    work = ScheduledWork(db, clock)
    senders = ReminderSenders(services, work)
    preregister(service)
    payload = {"partner_id": 1, "date": T0.date().isoformat(), "as_of": T0.isoformat()}
    assert senders.digest(_job(notices.DIGEST, payload)) == {"fanned_out": [ACME, ACME2]}
    assert client.posts == [] and services.kicked == 1
    senders.digest(_job(notices.DIGEST, {**payload, "member": ACME2}))
    service.set_notice_channel(ACME, "CNOTICE")
    senders.digest(_job(notices.DIGEST, payload))
    with db.session() as s:
        partner_store.set_digest_channel(s, 1, "CDIGEST")
    senders.digest(_job(notices.DIGEST, payload))
    assert [post["channel"] for post in client.posts] == [ACME2, "CNOTICE", "CDIGEST"]
    # Beta has nothing under review or preregistered: no digest is posted.
    beta = senders.digest(_job(notices.DIGEST, {**payload, "partner_id": 2}))
    assert "skipped" in beta and len(client.posts) == 3
