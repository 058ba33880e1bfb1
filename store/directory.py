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


def upsert_many(session: Session, rows: Sequence[dict[str, Any]], batch_size: int = 2000) -> None:
    """Insert or update by email in batches, with the dialect's native upsert."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = DirectoryAccount.__table__
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        stmt = insert(table).values(list(batch))
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.email_norm],
            set_={name: stmt.excluded[name] for name in _COLUMNS},
        )
        session.execute(stmt)


def count(session: Session) -> int:
    from sqlalchemy import func

    return int(session.scalar(select(func.count()).select_from(DirectoryAccount)) or 0)
