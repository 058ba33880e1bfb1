"""Failed acceptance attempts on one invitation (the rule lives in bot/invitations.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from store.models import Preregistration


def failed_attempts(session: Session, preregistration_id: int) -> tuple[int, datetime | None]:
    """(count, time of the last failure) for the invitation of this preregistration."""
    row = session.execute(
        select(Preregistration.invite_failed_attempts, Preregistration.invite_last_failed_at).where(
            Preregistration.id == preregistration_id
        )
    ).first()
    if row is None:
        return 0, None
    return int(row[0] or 0), row[1]


def record_failed_attempt(
    session: Session, preregistration_id: int, *, now: datetime, window_start: datetime
) -> int:
    """Counts one failure in a single UPDATE (concurrent attempts all count). A failure after a
    quiet spell (last one before `window_start`) starts a new count. Returns the new count."""
    stale = (Preregistration.invite_last_failed_at.is_(None)) | (
        Preregistration.invite_last_failed_at < window_start
    )
    session.execute(
        update(Preregistration)
        .where(Preregistration.id == preregistration_id)
        .values(
            invite_failed_attempts=case(
                (stale, 1), else_=Preregistration.invite_failed_attempts + 1
            ),
            invite_last_failed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return failed_attempts(session, preregistration_id)[0]
