"""The in-process scheduler of `serve` and `socket`: runs the sweep on an interval."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from bot.entry.sweep import run_sweep
from bot.wiring.app import Services

log = logging.getLogger(__name__)


def _sweep_job(services: Services) -> None:
    try:
        run_sweep(services)
    except Exception:  # noqa: BLE001 - a failed run is logged; the next run catches up
        log.exception("scheduled sweep failed")


def start_scheduler(services: Services) -> BackgroundScheduler:
    """The sweep is idempotent and claims work in the database, so a missed or overlapping
    run is harmless: coalesce missed runs into one and never run two in one process."""
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        _sweep_job,
        "interval",
        seconds=services.settings.sweep_interval_seconds,
        args=[services],
        id="sweep",
        coalesce=True,
        max_instances=1,
        next_run_time=services.clock.now(),
    )
    scheduler.start()
    return scheduler
