"""Slack deliveries already taken (table `slack_events`), so a retry is handled once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Insert, bindparam, delete
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


_FORGET = delete(SlackEvent).where(SlackEvent.at < bindparam("before"))

FORGET_EVERY = timedelta(minutes=1)
"""How often a process forgets the old keys: not on every event, where the delete was a second
write (on SQLite a second turn of the database's write lock) in front of every ack."""

_forgotten: dict[str, datetime] = {}
"""When each database (by URL) last had its old keys forgotten by this process."""


def first_delivery(db: Database, key: str, now: datetime) -> bool:
    """Records `key`; False when it was recorded before (a repeat of a delivery already taken).
    Forgets keys older than KEEP on the way, once every FORGET_EVERY, so the table stays small."""
    last = _forgotten.get(db.url)
    forget = last is None or not last <= now < last + FORGET_EVERY
    with db.writing(), db.autocommit() as conn:
        if forget:
            conn.execute(_FORGET, {"before": now - KEEP})
            _forgotten[db.url] = now
        stmt = _INSERT_IF_NEW[conn.dialect.name]
        return conn.execute(stmt, {"key": key, "at": now}).first() is not None
