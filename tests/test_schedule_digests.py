"""The day's digests and the progress a process keeps of them (bot/schedule.py DigestProgress):
an idle sweep asks only about partners above it, yet a partner added during the day, a partner
whose transaction committed late, another process's work and a new day are all handled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from bot import notices
from bot.schedule import DIGEST_SETTLE, DigestProgress, ScheduledWork, SchedulePolicy
from store import schedule as schedule_store
from store.models import Delivery, Partner
from tests.conftest import T0

TUESDAY_8 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # T0 is Monday 10:00


@pytest.fixture
def two_partners(admin):
    admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    admin.add_partner("Beta", "DE", ["UBETA1"], contact_email="desk@beta.example")


@pytest.fixture
def asked(monkeypatch) -> list[int]:
    """The `after_id` of every question to the outbox about the day's digests."""
    calls: list[int] = []
    real = schedule_store.partners_without_notice

    def spy(session, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs["after_id"])
        return real(session, **kwargs)

    monkeypatch.setattr(schedule_store, "partners_without_notice", spy)
    return calls


def digests(db) -> list[str]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        stmt = select(Delivery.dedupe_key).where(Delivery.kind == notices.DIGEST)
        return sorted(s.scalars(stmt.order_by(Delivery.id)))


def _partner(db, pid: int, at: datetime) -> None:  # type: ignore[no-untyped-def]
    """A partner with a chosen id, as a transaction that committed late leaves it."""
    with db.session() as s:
        s.execute(
            insert(Partner).values(
                id=pid, name=f"P{pid}", country="DE", lock_version=0, created_at=at
            )
        )


def test_an_idle_sweep_asks_only_about_partners_above_what_is_done(db, clock, two_partners, asked):
    work = ScheduledWork(db, clock, SchedulePolicy())
    assert work.enqueue_due(TUESDAY_8).digests == 2
    assert work.enqueue_due(TUESDAY_8 + timedelta(minutes=1)).digests == 0
    assert asked == [0, 2]


def test_a_partner_added_during_the_day_gets_its_digest(db, clock, admin, two_partners, asked):
    progress = DigestProgress()
    work = ScheduledWork(db, clock, SchedulePolicy(), digests=progress)
    assert work.enqueue_due(TUESDAY_8).digests == 2
    clock.set(TUESDAY_8 + timedelta(hours=1))
    admin.add_partner("Gamma", "DE", ["UGAMMA1"], contact_email="desk@gamma.example")
    assert work.enqueue_due(clock.now() + timedelta(minutes=1)).digests == 1
    assert work.enqueue_due(clock.now() + timedelta(minutes=2)).digests == 0
    assert progress.start(TUESDAY_8.date()) == 2  # Gamma is too new to be passed over yet
    assert work.enqueue_due(clock.now() + DIGEST_SETTLE + timedelta(minutes=1)).digests == 0
    assert progress.start(TUESDAY_8.date()) == 3
    assert digests(db) == [f"digest:{p}:2026-11-24" for p in (1, 2, 3)]


def test_a_partner_whose_transaction_committed_late_gets_its_digest(db, clock, two_partners):
    """Partner 4 committed before partner 3, both moments before a sweep: the sweep must not
    count 3 as done."""
    work = ScheduledWork(db, clock, SchedulePolicy())
    now = TUESDAY_8 + timedelta(hours=1)
    _partner(db, 4, now - timedelta(seconds=5))
    assert work.enqueue_due(now).digests == 3
    _partner(db, 3, now - timedelta(seconds=6))
    assert work.enqueue_due(now + timedelta(minutes=1)).digests == 1
    assert digests(db) == [f"digest:{p}:2026-11-24" for p in (1, 2, 3, 4)]


def test_digests_recorded_by_another_process_advance_the_progress(db, clock, two_partners, asked):
    ScheduledWork(db, clock, SchedulePolicy()).enqueue_due(TUESDAY_8)  # another process
    work = ScheduledWork(db, clock, SchedulePolicy())
    assert work.enqueue_due(TUESDAY_8 + timedelta(minutes=1)).digests == 0
    assert work.enqueue_due(TUESDAY_8 + timedelta(minutes=2)).digests == 0
    assert asked == [0, 0, 2]


def test_a_new_day_starts_from_the_first_partner(db, clock, two_partners):
    progress = DigestProgress()
    work = ScheduledWork(db, clock, SchedulePolicy(), digests=progress)
    assert work.enqueue_due(TUESDAY_8).digests == 2
    assert work.enqueue_due(TUESDAY_8 + timedelta(days=1)).digests == 2
    assert work.enqueue_due(TUESDAY_8 + timedelta(days=1, minutes=1)).digests == 0
    # a clock set back to the day before: the dedupe keys still say it is done
    assert work.enqueue_due(TUESDAY_8 + timedelta(hours=2)).digests == 0
    assert len(digests(db)) == 4


def test_progress_never_goes_back_within_a_day():
    progress = DigestProgress()
    day = T0.date()
    progress.done(day, 5)
    progress.done(day, 3)  # an older sweep finishing late
    assert progress.start(day) == 5
    assert progress.start(day + timedelta(days=1)) == 0
