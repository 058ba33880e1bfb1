"""The vendor's customer directory (loaded from CSV by the operator)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import DirectoryAccount

_COLUMNS = (
    "country",
    "china_mainland",
    "associated_partner",
    "consumer",
    "contract",
    "cash_spend",
    "direct_sales_preregistered",
    "enterprise_master",
    "updated_at",
)


def account(session: Session, email_norm: str) -> DirectoryAccount | None:
    return session.get(DirectoryAccount, email_norm)


def upsert_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update by email with the dialect's native upsert, as one executemany (one
    compiled statement; the driver batches the rows)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(DirectoryAccount.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=[DirectoryAccount.__table__.c.email_norm],
        set_={name: stmt.excluded[name] for name in _COLUMNS},
    )
    session.execute(stmt, list(rows))


def count(session: Session) -> int:
    from sqlalchemy import func

    return int(session.scalar(select(func.count()).select_from(DirectoryAccount)) or 0)
