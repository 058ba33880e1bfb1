"""All scheduled work, run once as of an instant: `prereg-bot sweep` and the in-process timer.

Order: expire (R5) first, so nothing is reminded about a row that just lapsed; erase the
personal data of rows that ended longer ago than PREREG_RETENTION_DAYS (bot/privacy.py); then
record the reminders, review escalations (R3) and digests that are due; then deliver every
due notice, including retries of earlier failures. Every step claims or records its work in the
database, so two runs at once (or one after the other) do nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import astuple, dataclass
from datetime import UTC, datetime

from bot import metrics
from bot.desk import Desk
from bot.outbox.delivery import DeliveryReport
from bot.privacy import Privacy
from bot.schedule import ScheduledWork, SchedulePolicy, ScheduleReport
from bot.wiring.app import Services

log = logging.getLogger(__name__)

EARLIEST_AT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_AT = datetime(9000, 1, 1, tzinfo=UTC)
"""The instants `sweep --at` accepts. The rules add and subtract days and working days to the
instant (validity, reminders, review deadlines, retry backoff); near the ends of what datetime
can hold that overflows, so anything outside these bounds is refused before any work starts."""


def sweep_instant(at: datetime) -> datetime | None:
    """`at` in UTC (naive taken as UTC), or None when the rules cannot compute with it."""
    try:
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except OverflowError:
        return None
    return at if EARLIEST_AT <= at < LATEST_AT else None


DELIVERY_PASSES = 3
"""A pass may record follow-up notices (a digest fanned out to DMs, "email pending" after a
failed send): deliver those too."""


@dataclass(frozen=True)
class SweepReport:
    expired: int
    scheduled: ScheduleReport
    delivered: DeliveryReport

    def summary(self) -> str:
        s, d = self.scheduled, self.delivered
        return (
            f"expired {self.expired}; reminders {s.reminders}; "
            f"review due soon {s.review_due_soon}; review overdue {s.review_overdue}; "
            f"digests {s.digests}; reports {s.reports}; "
            f"notices sent {d.sent}, retrying {d.retried}, failed {d.failed}"
        )


def scheduled_work(services: Services) -> ScheduledWork:
    return ScheduledWork(
        services.db,
        services.clock,
        SchedulePolicy.from_settings(services.settings),
        digests=services.digests,
    )


def run_sweep(services: Services, at: datetime | None = None) -> SweepReport:
    with metrics.SWEEP_SECONDS.time():
        return _sweep(services, at)


def _sweep(services: Services, at: datetime | None) -> SweepReport:
    now = at or services.clock.now()
    desk = Desk(services.service)
    expired = len(services.service.expire_due(now)) + desk.expire_unanswered(now)
    erased = Privacy.from_settings(services.db, services.clock, services.settings).erase_expired(
        now
    )
    if erased:
        log.info(
            "sweep as of %s: erased the personal data of %d ended preregistration(s)",
            now.isoformat(),
            erased,
        )
    scheduled = scheduled_work(services).enqueue_due(now)
    desk.enqueue_info_reminders(now)
    sent = retried = failed = 0
    for _ in range(DELIVERY_PASSES):
        report = services.deliverer.deliver_due(now)
        sent, retried, failed = (
            sent + report.sent,
            retried + report.retried,
            failed + report.failed,
        )
        if not (report.sent or report.retried or report.failed):
            break  # a failed send may have recorded a follow-up (email pending): one more pass
    result = SweepReport(expired, scheduled, DeliveryReport(sent, retried, failed))
    if expired or any(astuple(scheduled)) or sent or retried or failed:
        log.info("sweep as of %s: %s", now.isoformat(), result.summary())
    return result


def run_sweep_command(settings, at: datetime | None) -> int:  # type: ignore[no-untyped-def]
    """`prereg-bot sweep [--at ISO]`. With --at the whole run (claims, retry times, what the
    notices say) happens as of that instant."""
    from bot.clock import FixedClock
    from bot.wiring.app import create_services
    from store.migrate import upgrade

    upgrade(settings.database_url)
    clock = FixedClock(at) if at is not None else None
    services = create_services(settings, clock=clock, worker=True)  # background waits and pool
    try:
        report = run_sweep(services, at)
    finally:
        services.db.dispose()
    print(report.summary())
    return 0
