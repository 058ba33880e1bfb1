"""The append-only audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from store.models import AuditEvent

_INSERT = insert(AuditEvent.__table__)
"""Built once: building the insert per event cost more CPU than running it on SQLite."""


def record(
    session: Session | Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    result: str,
    preregistration_id: int | None = None,
    partner_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.execute(
        _INSERT,
        {
            "at": at,
            "actor": actor,
            "action": action,
            "result": result,
            "preregistration_id": preregistration_id,
            "partner_id": partner_id,
            "detail": detail,
        },
    )


def events_for(session: Session, preregistration_id: int) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.preregistration_id == preregistration_id)
        .order_by(AuditEvent.id)
    )
    return list(session.scalars(stmt))
