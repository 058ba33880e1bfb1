"""All scheduled work, run once as of an instant: `prereg-bot sweep` and the in-process timer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.app import Services
from bot.delivery import DeliveryReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    expired: int
    delivered: DeliveryReport


def run_sweep(services: Services, at: datetime | None = None) -> SweepReport:
    now = at or services.clock.now()
    expired = services.service.expire_due(now)
    delivered = services.deliverer.deliver_due(now)
    return SweepReport(expired=len(expired), delivered=delivered)


def run_sweep_command(settings, at: datetime | None) -> int:  # type: ignore[no-untyped-def]
    from bot.app import create_services
    from store.migrate import upgrade

    upgrade(settings.database_url)
    services = create_services(settings)
    try:
        report = run_sweep(services, at)
    finally:
        services.db.dispose()
    print(
        f"expired {report.expired}; notices sent {report.delivered.sent}, "
        f"retrying {report.delivered.retried}, failed {report.delivered.failed}"
    )
    return 0
