"""The outbox of notices. Enqueueing is idempotent on `dedupe_key`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import Delivery


def _insert_if_new(dialect: str) -> Insert:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(Delivery.__table__)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Delivery.__table__.c.id)
    )


# Built once per dialect: enqueueing is on the request path (an Approve click is one enqueue).
_INSERT_IF_NEW = {dialect: _insert_if_new(dialect) for dialect in ("postgresql", "sqlite")}


def enqueue(
    session: Session | Connection,
    *,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
    now: datetime,
    preregistration_id: int | None = None,
    not_before: datetime | None = None,
) -> bool:
    """Adds the notice unless one with the same key exists. Returns whether it was added."""
    row = {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "preregistration_id": preregistration_id,
        "created_at": now,
    }
    stmt = _INSERT_IF_NEW[
        session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name
    ]
    # RETURNING, not rowcount: with an implicit RETURNING psycopg reports rowcount -1.
    return session.execute(stmt, row).first() is not None


def by_key(session: Session, dedupe_key: str) -> Delivery | None:
    return session.scalars(select(Delivery).where(Delivery.dedupe_key == dedupe_key)).first()


def for_preregistration(session: Session, preregistration_id: int) -> list[Delivery]:
    stmt = (
        select(Delivery)
        .where(Delivery.preregistration_id == preregistration_id)
        .order_by(Delivery.id)
    )
    return list(session.scalars(stmt))


def claim_due(
    session: Session, *, now: datetime, lease_until: datetime, token: str, limit: int
) -> list[Delivery]:
    """Claims up to `limit` pending notices that are due and not leased by a live claim.

    PostgreSQL: `FOR UPDATE SKIP LOCKED` lets several processes claim disjoint rows at once.
    SQLite: a conditional UPDATE re-checks the lease, so two claimers never take one row.
    The lease (`claimed_until`) expires, so a process that dies after claiming loses nothing.
    """
    free = (
        Delivery.status == "pending",
        Delivery.next_attempt_at <= now,
        (Delivery.claimed_until.is_(None)) | (Delivery.claimed_until < now),
    )
    stmt = (
        select(Delivery).where(*free).order_by(Delivery.next_attempt_at, Delivery.id).limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        rows = list(session.scalars(stmt.with_for_update(skip_locked=True)))
        for row in rows:
            row.claimed_until = lease_until
            row.claim_token = token
            row.attempts = row.attempts + 1
        session.flush()
        return rows
    ids = list(session.scalars(stmt.with_only_columns(Delivery.id)))
    if not ids:
        return []
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), *free)
        .values(claimed_until=lease_until, claim_token=token, attempts=Delivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    claimed = select(Delivery).where(Delivery.claim_token == token).order_by(Delivery.id)
    return list(session.scalars(claimed.execution_options(populate_existing=True)))


def finish(
    conn: Connection | Session,
    delivery_id: int,
    token: str,
    *,
    now: datetime,
    result: dict[str, Any] | None,
) -> bool:
    """Marks a claimed notice sent, if this claim still holds it. One conditional UPDATE, so
    in autocommit it is one round trip (every notice sent ends here)."""
    stmt = (
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.claim_token == token,
            Delivery.status == "pending",
        )
        .values(status="sent", sent_at=now, result=result, claimed_until=None, last_error=None)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return conn.execute(stmt).first() is not None


def fail(
    session: Session,
    delivery_id: int,
    token: str,
    *,
    error: str,
    retry_at: datetime | None,
) -> bool:
    """Records a failed attempt: retry at `retry_at`, or give up (status failed) when None."""
    row = session.get(Delivery, delivery_id, with_for_update=True)
    if row is None or row.claim_token != token or row.status != "pending":
        return False
    row.last_error = error[:2000]
    row.claimed_until = None
    if retry_at is None:
        row.status = "failed"
    else:
        row.next_attempt_at = retry_at
    return True


def release(session: Session, delivery_id: int, token: str) -> bool:
    """Gives back a claimed notice that was not tried (the process is stopping): due at once
    for the next claimer, and the claim does not count as an attempt."""
    row = session.get(Delivery, delivery_id, with_for_update=True)
    if row is None or row.claim_token != token or row.status != "pending":
        return False
    row.claimed_until = None
    row.claim_token = None
    row.attempts = max(0, row.attempts - 1)
    return True


def pending_for_preregistration(session: Session, preregistration_id: int) -> list[Delivery]:
    stmt = select(Delivery).where(
        Delivery.preregistration_id == preregistration_id, Delivery.status != "sent"
    )
    return list(session.scalars(stmt))
