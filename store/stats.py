"""Counts read when /metrics is scraped: preregistrations per status and the open reviews."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from store.models import Preregistration


@dataclass(frozen=True)
class Reviews:
    open: int
    overdue: int


def preregistrations_by_status(session: Session) -> dict[str, int]:
    stmt = select(Preregistration.status, func.count()).group_by(Preregistration.status)
    return {status: count for status, count in session.execute(stmt)}


def reviews(session: Session, *, now: datetime) -> Reviews:
    """Under review, and of those past their deadline (R3): the review index holds just them."""
    overdue = case((Preregistration.review_due_at < now, 1), else_=0)
    stmt = select(func.count(), func.coalesce(func.sum(overdue), 0)).where(
        Preregistration.status == "under_review"
    )
    total, late = session.execute(stmt).one()
    return Reviews(int(total), int(late))
