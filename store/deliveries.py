"""The outbox of notices. Enqueueing is idempotent on `dedupe_key`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import Delivery


def enqueue(
    session: Session,
    *,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
    now: datetime,
    preregistration_id: int | None = None,
    not_before: datetime | None = None,
) -> bool:
    """Adds the notice unless one with the same key exists. Returns whether it was added."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(Delivery.__table__)
        .values(
            kind=kind,
            dedupe_key=dedupe_key,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=not_before or now,
            preregistration_id=preregistration_id,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    return session.execute(stmt).rowcount == 1


def by_key(session: Session, dedupe_key: str) -> Delivery | None:
    return session.scalars(select(Delivery).where(Delivery.dedupe_key == dedupe_key)).first()


def for_preregistration(session: Session, preregistration_id: int) -> list[Delivery]:
    stmt = (
        select(Delivery)
        .where(Delivery.preregistration_id == preregistration_id)
        .order_by(Delivery.id)
    )
    return list(session.scalars(stmt))
