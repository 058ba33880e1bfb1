"""Slack deliveries already taken (table `slack_events`), so a retry is handled once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Insert, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from store.db import Database
from store.models import SlackEvent

KEEP = timedelta(hours=1)
"""Slack retries an event three times within minutes; a key older than this is forgotten."""


def _insert_if_new(dialect: str) -> Insert:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = SlackEvent.__table__
    return insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)


_INSERT_IF_NEW = {dialect: _insert_if_new(dialect) for dialect in ("postgresql", "sqlite")}


def first_delivery(db: Database, key: str, now: datetime) -> bool:
    """Records `key`; False when it was recorded before (a repeat of a delivery already taken).
    Forgets keys older than KEEP on the way, so the table stays small."""
    with db.autocommit() as conn:
        conn.execute(delete(SlackEvent).where(SlackEvent.at < now - KEEP))
        stmt = _INSERT_IF_NEW[conn.dialect.name]
        return conn.execute(stmt, {"key": key, "at": now}).first() is not None
