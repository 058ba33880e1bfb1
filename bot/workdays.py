"""Working-day arithmetic for the review deadline (R3: two working days)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta


def is_working_day(day: date, holidays: frozenset[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_working_days(start: datetime, days: int, holidays: Iterable[date] = ()) -> datetime:
    """The same time of day `days` working days later; weekends and holidays are skipped."""
    if days < 0:
        raise ValueError("days must not be negative")
    skip = frozenset(holidays)
    current = start
    remaining = days
    while remaining:
        current += timedelta(days=1)
        if is_working_day(current.date(), skip):
            remaining -= 1
    return current
