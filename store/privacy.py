"""Queries for personal-data retention, erasure and access requests (bot/privacy.py decides)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select, update
from sqlalchemy.orm import Session

from store.models import AuditEvent, Delivery, DirectoryAccount, Preregistration

ENDED_STATUSES = ("deleted", "expired", "rejected")


def ended_before_ids(session: Session, cutoff: datetime, limit: int) -> list[int]:
    """Ended, not yet erased preregistrations whose end lies before `cutoff`, longest ended
    first."""
    ended_at = func.coalesce(
        Preregistration.deleted_at, Preregistration.expired_at, Preregistration.decided_at
    )
    stmt = (
        select(Preregistration.id)
        .where(
            Preregistration.status.in_(ENDED_STATUSES),
            Preregistration.erased_at.is_(None),
            ended_at < cutoff,
        )
        # In the order of ix_preregistrations_retention (migration 0009), so PostgreSQL reads
        # the index up to `limit`: ordered by id it scanned the whole table in id order.
        .order_by(ended_at, Preregistration.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def rows_of_person(session: Session, email_norm: str, email_hash: str) -> list[Preregistration]:
    stmt = (
        select(Preregistration)
        .where(
            or_(Preregistration.email_norm == email_norm, Preregistration.email_hash == email_hash)
        )
        .order_by(Preregistration.id)
        .with_for_update()
    )
    return list(session.scalars(stmt))


def erase_row(session: Session, preregistration_id: int, email_hash: str, now: datetime) -> None:
    """Blanks the row's personal data; keeps status, dates and the partner for counts."""
    session.execute(
        update(Preregistration)
        .where(Preregistration.id == preregistration_id)
        .values(
            full_name="",
            email="",
            email_norm="",
            mobile="",
            decision_reason=None,
            email_hash=email_hash,
            erased_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def deliveries_for(session: Session, ids: Sequence[int]) -> list[Delivery]:
    if not ids:
        return []
    stmt = select(Delivery).where(Delivery.preregistration_id.in_(ids)).order_by(Delivery.id)
    return list(session.scalars(stmt))


def audit_events_of(session: Session, ids: Sequence[int], needle: str) -> list[AuditEvent]:
    """Events about these preregistrations, and any whose actor or detail mentions `needle`."""
    lowered = f"%{needle.lower()}%"
    mentions = or_(
        func.lower(cast(AuditEvent.detail, String)).like(lowered),
        func.lower(AuditEvent.actor).like(lowered),
    )
    where = or_(AuditEvent.preregistration_id.in_(ids), mentions) if ids else mentions
    return list(session.scalars(select(AuditEvent).where(where).order_by(AuditEvent.id)))


def set_event(session: Session, event_id: int, actor: str, detail: Any) -> None:
    session.execute(
        update(AuditEvent)
        .where(AuditEvent.id == event_id)
        .values(actor=actor, detail=detail)
        .execution_options(synchronize_session=False)
    )


def set_delivery(session: Session, delivery_id: int, **values: Any) -> None:
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def directory_account(session: Session, email_norm: str) -> DirectoryAccount | None:
    return session.get(DirectoryAccount, email_norm)
