"""Queries that find scheduled work (reminders, review escalations, digests).

Each finder reads one partial index range (`ix_preregistrations_expiring` or
`ix_preregistrations_review_due`) and drops rows whose notice is already in the outbox with a
`NOT EXISTS` probe of the unique `dedupe_key` index. So a run costs the rows inside the window
(work that is due or was just done), never a scan of the whole table, and a row already
noticed never comes back to Python. The rules (which window, which key) come from the caller
(bot/schedule.py); these functions only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, String, case, cast, exists, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from store.models import Delivery, Partner, Preregistration


def _key(prefix: str, ident: ColumnElement[int], suffix: str = "") -> ColumnElement[str]:
    """`prefix || id || suffix` in SQL: the dedupe key of a row's notice."""
    expr = literal(prefix, String) + cast(ident, String)
    return expr + literal(suffix, String) if suffix else expr


def _no_notice(ident: ColumnElement[int], prefix: str, suffixes: Sequence[str]) -> ColumnElement:
    keys = [_key(prefix, ident, suffix) for suffix in suffixes] or [_key(prefix, ident)]
    return ~exists().where(Delivery.dedupe_key.in_(keys))


def expiring_without_notice(
    session: Session,
    *,
    after: datetime,
    until: datetime,
    key_prefix: str,
    key_suffixes: Sequence[str],
    limit: int,
) -> list[int]:
    """Ids of preregistered rows expiring in (after, until] with none of the keys
    `key_prefix || id || suffix` in the outbox. Served by ix_preregistrations_expiring."""
    stmt = (
        select(Preregistration.id)
        .where(
            Preregistration.status == "preregistered",
            Preregistration.expires_at > after,
            Preregistration.expires_at <= until,
            _no_notice(Preregistration.id, key_prefix, key_suffixes),
        )
        .order_by(Preregistration.expires_at, Preregistration.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


class epoch_seconds(FunctionElement[int]):  # noqa: N801 - used like a SQL function
    """Whole seconds since 1970 of a naive-UTC timestamp column, as Python's
    `int(dt.timestamp())` gives them (floor), on PostgreSQL and SQLite alike."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "postgresql")
def _epoch_pg(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(STRFTIME('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


def _round_suffix(asked_at: ColumnElement[Any]) -> ColumnElement[str]:
    """'' for a request never sent back, else ':' || its round (bot/desk.py `info_round`)."""
    return case(
        (asked_at.is_(None), literal("", String)),
        else_=literal(":", String) + cast(epoch_seconds(asked_at), String),
    )


def reviews_without_notice(
    session: Session,
    *,
    after: datetime | None,
    until: datetime,
    key_prefixes: Sequence[str],
    limit: int,
) -> list[tuple[int, datetime | None]]:
    """(id, info_asked_at) of rows under review whose deadline is in (after, until] (no lower
    bound when `after` is None) with no notice under any `prefix || id || round` of their
    current round (a request sent back and resubmitted has a new deadline: its round is the
    last sending-back; none for the first). Served by ix_preregistrations_review_due."""
    suffix = _round_suffix(Preregistration.info_asked_at)
    keys = [
        literal(prefix, String) + cast(Preregistration.id, String) + suffix
        for prefix in key_prefixes
    ]
    conditions = [
        Preregistration.status == "under_review",
        Preregistration.review_due_at <= until,
        ~exists().where(Delivery.dedupe_key.in_(keys)),
    ]
    if after is not None:
        conditions.append(Preregistration.review_due_at > after)
    stmt = (
        select(Preregistration.id, Preregistration.info_asked_at)
        .where(*conditions)
        .order_by(Preregistration.review_due_at, Preregistration.id)
        .limit(limit)
    )
    return [(pid, asked) for pid, asked in session.execute(stmt)]


def partners_without_notice(
    session: Session, *, key_prefix: str, key_suffix: str, after_id: int, limit: int
) -> list[int]:
    """Ids of partners (id > after_id) with no `prefix || id || suffix` notice. Reads the
    partners table only: its size is the number of partners, not of preregistrations."""
    stmt = (
        select(Partner.id)
        .where(Partner.id > after_id, _no_notice(Partner.id, key_prefix, (key_suffix,)))
        .order_by(Partner.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def last_partner_created_before(session: Session, before: datetime) -> int:
    """The highest id of a partner created before `before`, 0 if none. Ids grow with creation,
    so the primary key read backwards stops at the first such partner: it reads only the
    partners created since."""
    stmt = (
        select(Partner.id).where(Partner.created_at < before).order_by(Partner.id.desc()).limit(1)
    )
    return int(session.scalar(stmt) or 0)


def count_expiring_between(
    session: Session, partner_id: int, start: datetime, end: datetime
) -> int:
    stmt = select(func.count()).where(
        Preregistration.partner_id == partner_id,
        Preregistration.status == "preregistered",
        Preregistration.expires_at >= start,
        Preregistration.expires_at < end,
    )
    return int(session.scalar(stmt) or 0)


def under_review_for_partner(
    session: Session, partner_id: int, limit: int
) -> list[Preregistration]:
    """The partner's rows under review, soonest deadline first."""
    stmt = (
        select(Preregistration)
        .where(Preregistration.partner_id == partner_id, Preregistration.status == "under_review")
        .order_by(Preregistration.review_due_at, Preregistration.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))
