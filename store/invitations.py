"""Acceptance attempts on one invitation: the total of wrong addresses, and the attempts of
each client (the rules live in bot/invitations.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import InviteAttempt, Preregistration


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
    """Counts one wrong address in the invitation's total (all clients), in a single UPDATE
    (concurrent ones all count). A failure after a quiet spell (last one before
    `window_start`) starts a new count. Returns the new count."""
    stale = (Preregistration.invite_last_failed_at.is_(None)) | (
        Preregistration.invite_last_failed_at < window_start
    )
    row = session.execute(
        update(Preregistration)
        .where(Preregistration.id == preregistration_id)
        .values(
            invite_failed_attempts=case(
                (stale, 1), else_=Preregistration.invite_failed_attempts + 1
            ),
            invite_last_failed_at=now,
        )
        .returning(Preregistration.invite_failed_attempts)
        .execution_options(synchronize_session=False)
    ).first()
    return 0 if row is None else int(row[0])


# --- per client ------------------------------------------------------------------------------


def _ensure_client_row(session: Session, preregistration_id: int, client: str) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(InviteAttempt.__table__)
        .values(preregistration_id=preregistration_id, client=client, attempts=0)
        .on_conflict_do_nothing(index_elements=["preregistration_id", "client"])
    )


def reserve_attempt(
    session: Session,
    preregistration_id: int,
    client: str,
    *,
    now: datetime,
    window_start: datetime,
    limit: int,
) -> int | None:
    """Takes one of the client's `limit` attempts before its address is compared, in one
    conditional UPDATE ... RETURNING: concurrent requests queue on the row, and each sees the
    count the one before it left, so no more than `limit` ever get through. A count whose last
    attempt is older than `window_start` starts again. Returns the attempt's number, or None
    when the client has used them all (nothing is changed then).
    Starts with a write, so SQLite takes its write lock first and never has to upgrade."""
    _ensure_client_row(session, preregistration_id, client)
    table = InviteAttempt.__table__
    stale = table.c.last_attempt_at.is_(None) | (table.c.last_attempt_at < window_start)
    row = session.execute(
        update(table)
        .where(
            table.c.preregistration_id == preregistration_id,
            table.c.client == client,
            stale | (table.c.attempts < limit),
        )
        .values(
            attempts=case((stale, 1), else_=table.c.attempts + 1),
            last_attempt_at=now,
        )
        .returning(table.c.attempts)
    ).first()
    return None if row is None else int(row[0])


def refund_attempt(session: Session, preregistration_id: int, client: str) -> None:
    """Gives back an attempt whose address was never compared (the invitation changed)."""
    table = InviteAttempt.__table__
    session.execute(
        update(table)
        .where(
            table.c.preregistration_id == preregistration_id,
            table.c.client == client,
            table.c.attempts > 0,
        )
        .values(attempts=table.c.attempts - 1)
    )


def client_attempts(
    session: Session, preregistration_id: int, client: str
) -> tuple[int, datetime | None]:
    """(attempts, time of the last one) of one client on one invitation."""
    row = session.get(InviteAttempt, (preregistration_id, client))
    if row is None:
        return 0, None
    return int(row.attempts or 0), row.last_attempt_at
