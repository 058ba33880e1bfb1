"""The rules of scheduled work: which expiry reminders (R5), review escalations (R3) and daily
digests are due as of an instant.

Every piece of due work becomes an outbox row (store/deliveries.py) whose dedupe key names
the notice, so a second sweep, an overlapping sweep or another process records nothing twice,
and a process that was down catches up on its next run. Time comes from the caller's instant
(or the injected clock); calendar days only, holidays play no part here (they only move the
review deadline itself, which the service sets).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot import notices
from bot.clock import Clock
from bot.desk import info_round
from bot.models import PartnerView, PreregView
from store import deliveries
from store import partners as partner_store
from store import preregistrations as prereg_store
from store import schedule as schedule_store
from store.db import Database
from store.models import QUOTA_STATUSES

DIGEST_LIST_LIMIT = 10
"""Rows listed per section of a digest; the rest are counted."""


def reminder_key(preregistration_id: int, days: int) -> str:
    return f"{notices.EXPIRY_REMINDER}:{preregistration_id}:{days}"


def _review_key(kind: str, preregistration_id: int, round_: int) -> str:
    """One notice of `kind` per review round: a request sent back and resubmitted gets a new
    deadline, and its notices anew (round: bot/desk.py `info_round`; 0, no suffix, for the
    first submission, so keys recorded before rounds counted still hold)."""
    base = f"{kind}:{preregistration_id}"
    return f"{base}:{round_}" if round_ else base


def review_due_soon_key(preregistration_id: int, round_: int = 0) -> str:
    return _review_key(notices.REVIEW_DUE_SOON, preregistration_id, round_)


def review_overdue_key(preregistration_id: int, round_: int = 0) -> str:
    return _review_key(notices.REVIEW_OVERDUE, preregistration_id, round_)


def digest_key(partner_id: int, day: date, member: str | None = None) -> str:
    base = f"{notices.DIGEST}:{partner_id}:{day.isoformat()}"
    return f"{base}:{member}" if member else base


@dataclass(frozen=True)
class SchedulePolicy:
    reminder_days: tuple[int, ...] = (3, 1)
    review_due_soon: timedelta = timedelta(hours=4)
    digest_hour_utc: int = 8
    digest_horizon: timedelta = timedelta(days=7)
    report_weekday: int | None = None
    """0 = Monday; None: no weekly program report (no manager channel to send it to)."""
    report_hour_utc: int = 8

    @classmethod
    def from_settings(cls, settings: Any) -> SchedulePolicy:
        return cls(
            reminder_days=tuple(settings.reminder_days),
            review_due_soon=timedelta(hours=settings.review_due_soon_hours),
            digest_hour_utc=settings.digest_hour_utc,
            report_weekday=settings.report_weekday if settings.manager_channel_id else None,
            report_hour_utc=settings.report_hour_utc,
        )

    @property
    def days(self) -> tuple[int, ...]:
        """The configured reminder days, most urgent (fewest days) first."""
        return tuple(sorted({d for d in self.reminder_days if d > 0}))


def reminder_windows(now: datetime, days: tuple[int, ...]) -> list[tuple[int, datetime, datetime]]:
    """(days, after, until) per configured reminder, most urgent first. A row expiring in
    (after, until] is due for that reminder and for no more urgent one, so the windows are
    disjoint: a process that missed the 3-day reminder and is now inside the 1-day window
    sends only the 1-day one."""
    windows = []
    after = now
    for d in sorted(days):
        until = now + timedelta(days=d)
        windows.append((d, after, until))
        after = until
    return windows


def most_urgent_reminder(expires_at: datetime, now: datetime, days: tuple[int, ...]) -> int | None:
    """The reminder due for a row as of `now`: the fewest days d with
    expires_at - d <= now < expires_at, or None (not yet due, or already expired)."""
    if expires_at <= now:
        return None
    for d in sorted(days):
        if expires_at - timedelta(days=d) <= now:
            return d
    return None


REPORT_CATCH_UP = timedelta(days=1)
"""A weekly report missed (the process was down) is still sent within this time after its hour;
later it is skipped rather than sent days late (and never on a first start mid-week)."""


def report_day(now: datetime, weekday: int, hour_utc: int) -> date | None:
    """The day of the weekly report due at `now`, or None."""
    utc = now.astimezone(UTC)
    day = utc.date() - timedelta(days=(utc.weekday() - weekday) % 7)
    due = datetime(day.year, day.month, day.day, hour_utc, tzinfo=UTC)
    if due > utc:
        due -= timedelta(days=7)
        day -= timedelta(days=7)
    return day if utc - due < REPORT_CATCH_UP else None


def report_key(day: date) -> str:
    return f"{notices.WEEKLY_REPORT}:{day.isoformat()}"


def digest_day(now: datetime, hour_utc: int) -> date | None:
    """The UTC day whose digest is due at `now`, or None before the digest hour."""
    utc = now.astimezone(UTC)
    return utc.date() if utc.hour >= hour_utc else None


@dataclass(frozen=True)
class ScheduleReport:
    """Notices recorded by one run (not counting those another run recorded first)."""

    reminders: int = 0
    review_due_soon: int = 0
    review_overdue: int = 0
    digests: int = 0
    reports: int = 0


@dataclass(frozen=True)
class Digest:
    partner: PartnerView
    day: date
    as_of: datetime
    counts: dict[str, int]
    expiring: list[PreregView] = field(default_factory=list)
    expiring_total: int = 0
    under_review: list[PreregView] = field(default_factory=list)

    @property
    def under_review_total(self) -> int:
        return self.counts.get("under_review", 0)

    @property
    def is_empty(self) -> bool:
        """Nothing under review and nothing preregistered: no one needs to act."""
        return not any(self.counts.get(s) for s in QUOTA_STATUSES)


DIGEST_SETTLE = timedelta(minutes=10)
"""A partner created this recently is asked about again on every sweep: its transaction may
have been open while a later partner committed, so its id can lie below ids already asked."""


class DigestProgress:
    """How far the day's digests are known to be recorded: every partner with an id up to
    `through` has its digest of `day` in the outbox (this process's or another's). Kept as long
    as the process (bot/wiring's Services), so an idle sweep asks only about the partners above
    it (those added since) instead of probing the outbox once per partner. Only a shortcut: the
    outbox's dedupe key stays the guard against a digest recorded twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._day: date | None = None
        self._through = 0

    def start(self, day: date) -> int:
        """The id after which to ask: 0 on a day not seen yet."""
        with self._lock:
            return self._through if self._day == day else 0

    def done(self, day: date, through: int) -> None:
        with self._lock:
            if self._day != day:
                self._day, self._through = day, through
            else:
                self._through = max(self._through, through)


class ScheduledWork:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        policy: SchedulePolicy | None = None,
        batch: int = 500,
        digests: DigestProgress | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy or SchedulePolicy()
        self.batch = batch
        self.digests = digests or DigestProgress()

    def enqueue_due(self, now: datetime | None = None) -> ScheduleReport:
        """Records every reminder, escalation and digest due at `now` that is not yet recorded."""
        now = now or self.clock.now()
        soon, overdue = self._enqueue_reviews(now)
        return ScheduleReport(
            reminders=self._enqueue_reminders(now),
            review_due_soon=soon,
            review_overdue=overdue,
            digests=self._enqueue_digests(now),
            reports=self._enqueue_report(now),
        )

    def _enqueue_report(self, now: datetime) -> int:
        """The weekly program report for the managers (bot/report.py), once per week."""
        if self.policy.report_weekday is None:
            return 0
        day = report_day(now, self.policy.report_weekday, self.policy.report_hour_utc)
        if day is None:
            return 0
        with self.db.session() as s:
            return int(
                deliveries.enqueue(
                    s,
                    kind=notices.WEEKLY_REPORT,
                    dedupe_key=report_key(day),
                    payload={"date": day.isoformat(), "as_of": now.isoformat()},
                    now=now,
                )
            )

    # --- R5: remind before expiry ----------------------------------------------------------

    def _enqueue_reminders(self, now: datetime) -> int:
        added = 0
        days = self.policy.days
        for d, after, until in reminder_windows(now, days):
            # A reminder already recorded for this window or a more urgent one ends the row's
            # need (only a clock moved backwards could find the latter).
            suffixes = [f":{x}" for x in days if x <= d]
            while True:
                with self.db.session() as s:
                    ids = schedule_store.expiring_without_notice(
                        s,
                        after=after,
                        until=until,
                        key_prefix=f"{notices.EXPIRY_REMINDER}:",
                        key_suffixes=suffixes,
                        limit=self.batch,
                    )
                    for pid in ids:
                        added += deliveries.enqueue(
                            s,
                            kind=notices.EXPIRY_REMINDER,
                            dedupe_key=reminder_key(pid, d),
                            payload={"preregistration_id": pid, "days_before": d},
                            now=now,
                            preregistration_id=pid,
                        )
                if len(ids) < self.batch:
                    break
        return added

    # --- R3: review deadline ---------------------------------------------------------------

    def _enqueue_reviews(self, now: datetime) -> tuple[int, int]:
        """Overdue first: a review found already past due gets only the overdue notice."""
        overdue = self._enqueue_review_kind(
            now, notices.REVIEW_OVERDUE, review_overdue_key, None, now, [notices.REVIEW_OVERDUE]
        )
        soon = self._enqueue_review_kind(
            now,
            notices.REVIEW_DUE_SOON,
            review_due_soon_key,
            now,
            now + self.policy.review_due_soon,
            [notices.REVIEW_DUE_SOON, notices.REVIEW_OVERDUE],
        )
        return soon, overdue

    def _enqueue_review_kind(
        self,
        now: datetime,
        kind: str,
        key: Callable[[int, int], str],
        after: datetime | None,
        until: datetime,
        blocking_kinds: list[str],
    ) -> int:
        """Records `kind` for reviews due in (after, until] that have none of `blocking_kinds`
        in their current round."""
        added = 0
        while True:
            with self.db.session() as s:
                ids = schedule_store.reviews_without_notice(
                    s,
                    after=after,
                    until=until,
                    key_prefixes=[f"{k}:" for k in blocking_kinds],
                    limit=self.batch,
                )
                for pid, asked_at in ids:
                    added += deliveries.enqueue(
                        s,
                        kind=kind,
                        dedupe_key=key(pid, info_round(asked_at)),
                        payload={"preregistration_id": pid},
                        now=now,
                        preregistration_id=pid,
                    )
            if len(ids) < self.batch:
                return added

    # --- the daily digest --------------------------------------------------------------------

    def _enqueue_digests(self, now: datetime) -> int:
        day = digest_day(now, self.policy.digest_hour_utc)
        if day is None:
            return 0
        added = 0
        after_id = start = self.digests.start(day)
        settled: int | None = None
        while True:
            with self.db.session() as s:
                if settled is None:
                    # read before asking: every partner up to it is asked about below, and
                    # its transaction has long ended (DIGEST_SETTLE)
                    settled = schedule_store.last_partner_created_before(s, now - DIGEST_SETTLE)
                ids = schedule_store.partners_without_notice(
                    s,
                    key_prefix=f"{notices.DIGEST}:",
                    key_suffix=f":{day.isoformat()}",
                    after_id=after_id,
                    limit=self.batch,
                )
                for partner_id in ids:
                    added += deliveries.enqueue(
                        s,
                        kind=notices.DIGEST,
                        dedupe_key=digest_key(partner_id, day),
                        payload={
                            "partner_id": partner_id,
                            "date": day.isoformat(),
                            "as_of": now.isoformat(),
                        },
                        now=now,
                    )
            if len(ids) < self.batch:
                self.digests.done(day, max(start, settled))
                return added
            after_id = ids[-1]

    def digest(self, partner_id: int, day: date, as_of: datetime) -> Digest | None:
        """What a partner's digest shows, read now: counts per status, what expires in the
        week after `as_of`, what is under review. None if the partner is gone."""
        end = as_of + self.policy.digest_horizon
        with self.db.session() as s:
            partner = partner_store.partner_by_id(s, partner_id)
            if partner is None:
                return None
            expiring = prereg_store.expiring_between(
                s, as_of, end, partner_id, limit=DIGEST_LIST_LIMIT
            )
            reviews = schedule_store.under_review_for_partner(s, partner_id, DIGEST_LIST_LIMIT)
            return Digest(
                partner=PartnerView.of(partner),
                day=day,
                as_of=as_of,
                counts=prereg_store.counts_by_status(s, partner_id),
                expiring=[PreregView.of(r, partner) for r in expiring],
                expiring_total=schedule_store.count_expiring_between(s, partner_id, as_of, end),
                under_review=[PreregView.of(r, partner) for r in reviews],
            )

    def fan_out_digest(self, partner_id: int, day: date, as_of: datetime) -> list[str]:
        """Records one digest DM per member (each its own outbox row, so a failure halfway
        re-sends nobody's). Returns the members."""
        now = self.clock.now()
        with self.db.session() as s:
            members = partner_store.member_ids(s, partner_id)
            for member in members:
                deliveries.enqueue(
                    s,
                    kind=notices.DIGEST,
                    dedupe_key=digest_key(partner_id, day, member),
                    payload={
                        "partner_id": partner_id,
                        "date": day.isoformat(),
                        "as_of": as_of.isoformat(),
                        "member": member,
                    },
                    now=now,
                )
        return members

    def partner(self, partner_id: int) -> PartnerView | None:
        with self.db.session() as s:
            partner = partner_store.partner_by_id(s, partner_id)
            return PartnerView.of(partner) if partner is not None else None
