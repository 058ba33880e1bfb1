"""The outbox of notices. Enqueueing is idempotent on `dedupe_key`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Insert,
    Integer,
    Row,
    Select,
    Update,
    all_,
    bindparam,
    case,
    exists,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

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


def _dialect(session: Session | Connection) -> str:
    return session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name


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
    stmt = _INSERT_IF_NEW[_dialect(session)]
    # RETURNING, not rowcount: with an implicit RETURNING psycopg reports rowcount -1.
    return session.execute(stmt, row).first() is not None


def record_done(
    session: Session | Connection,
    *,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
    now: datetime,
) -> bool:
    """Records a notice carried out at `now` by the caller itself, unless one with the same key
    exists (queued, or done already): what keeps a retry of it from being done again.
    Returns whether it was added."""
    row = {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "payload": payload,
        "status": "sent",
        "attempts": 1,
        "next_attempt_at": now,
        "sent_at": now,
        "created_at": now,
    }
    stmt = _INSERT_IF_NEW[_dialect(session)]
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
) -> list[Row[Any]]:
    """Claims up to `limit` pending notices that are due and not leased by a live claim.

    PostgreSQL: `FOR UPDATE SKIP LOCKED` lets several processes claim disjoint rows at once.
    SQLite: a conditional UPDATE re-checks the lease, so two claimers never take one row.
    The lease (`claimed_until`) expires, so a process that dies after claiming loses nothing.
    """
    ids = [c.id for c in due_candidates(session, now=now, limit=limit, ordered=False)]
    return claim(session, ids, now=now, lease_until=lease_until, token=token)


@dataclass(frozen=True)
class Candidate:
    id: int
    kind: str
    preregistration_id: int | None


_T = Delivery.__table__
_NOW = bindparam("now", type_=_T.c.next_attempt_at.type)
_FREE = (
    _T.c.status == "pending",
    _T.c.next_attempt_at <= _NOW,
    (_T.c.claimed_until.is_(None)) | (_T.c.claimed_until < _NOW),
)
"""Pending, due at `:now`, and not leased by a live claim."""

# Built once: the outbox reads these at every claim, and a claim follows every notice sent.
_LEASED_FIRST = (
    select(_T.c.preregistration_id, func.min(_T.c.id))
    .where(
        _T.c.status == "pending",
        _T.c.claimed_until >= _NOW,
        _T.c.preregistration_id.is_not(None),
    )
    .group_by(_T.c.preregistration_id)
)


def leased_first(session: Session | Connection, now: datetime) -> list[tuple[int, int]]:
    """(preregistration, its first notice leased at `now`) for each preregistration that has a
    notice being sent: a later notice of it waits for that one."""
    return [(int(p), int(first)) for p, first in session.execute(_LEASED_FIRST, {"now": now})]


def _candidates_statement(dialect: str, of_kinds: bool, after: bool) -> Select[Any]:
    """Free notices, oldest due first, `:limit` of them, none of `:exclude_ids`; `of_kinds`: of
    the kinds `:kinds`; `after`: after (`:after_at`, `:after_id`) in that order (the next page).

    On PostgreSQL `:exclude_ids` is one array parameter, so the statement's text is the same
    however many notices are paced: an expanding NOT IN rendered a placeholder per id, a new
    text at nearly every claim under a burst, and psycopg keeps a count of each text per
    connection (up to 100): 7.7 MiB of the worker's peak under bench/footprint.py."""
    if dialect == "postgresql":
        not_paced = _T.c.id != all_(bindparam("exclude_ids", type_=ARRAY(Integer)))
    else:
        not_paced = _T.c.id.not_in(bindparam("exclude_ids", expanding=True))
    stmt = select(_T.c.id, _T.c.kind, _T.c.preregistration_id, _T.c.next_attempt_at).where(
        *_FREE,
        _T.c.kind.not_in(bindparam("exclude_kinds", expanding=True)),
        not_paced,
    )
    if of_kinds:
        stmt = stmt.where(_T.c.kind.in_(bindparam("kinds", expanding=True)))
    if after:
        stmt = stmt.where(
            tuple_(_T.c.next_attempt_at, _T.c.id)
            > tuple_(bindparam("after_at", type_=_T.c.next_attempt_at.type), bindparam("after_id"))
        )
    return stmt.order_by(_T.c.next_attempt_at, _T.c.id).limit(bindparam("limit"))


_CANDIDATES = {
    (dialect, of_kinds, after): _candidates_statement(dialect, of_kinds, after)
    for dialect in ("postgresql", "sqlite")
    for of_kinds in (False, True)
    for after in (False, True)
}


def due_candidates(
    session: Session | Connection,
    *,
    now: datetime,
    limit: int,
    kinds: Collection[str] | None = None,
    exclude_kinds: Collection[str] = (),
    ordered: bool = True,
    exclude_ids: Collection[int] = (),
) -> list[Candidate]:
    """Up to `limit` notices free to claim, oldest due first, read without locking (`claim`
    re-checks). With `ordered`, a notice whose preregistration has an earlier notice leased
    right now (being sent, here or by another process) waits for it. `exclude_ids`: notices
    this process is pacing (bot/outbox/delivery.py), so the ones behind them are seen."""
    # The leased notices first (a few: those being sent right now, ix_deliveries_leased),
    # then a plain ordered scan of ix_deliveries_due that stops at `limit`, the notices
    # that wait left out here. One statement with NOT EXISTS let PostgreSQL, its estimate of
    # pending rows stale after a burst (10,000 digests), probe every pending row for every
    # candidate; a clause per leased preregistration made a new statement, compiled again,
    # at nearly every claim.
    waits = dict(leased_first(session, now)) if ordered else {}
    params: dict[str, Any] = {
        "now": now,
        "limit": limit,
        "exclude_kinds": sorted(exclude_kinds),
        "exclude_ids": sorted(exclude_ids),
    }
    if kinds is not None:
        params["kinds"] = sorted(kinds)
    found: list[Candidate] = []
    after = False
    dialect = _dialect(session)
    while True:
        rows = session.execute(_CANDIDATES[dialect, kinds is not None, after], params).all()
        for row in rows:
            # (a notice of no preregistration never waits)
            first = waits.get(row.preregistration_id)
            if first is None or row.id <= first:
                found.append(Candidate(row.id, row.kind, row.preregistration_id))
                if len(found) == limit:
                    return found
        if len(rows) < limit or not waits:
            return found
        # a page of waiting notices: read on past them
        after, params["after_at"], params["after_id"] = True, rows[-1].next_attempt_at, rows[-1].id


CLAIMED = (
    _T.c.id,
    _T.c.kind,
    _T.c.dedupe_key,
    _T.c.payload,
    _T.c.attempts,
    _T.c.preregistration_id,
    _T.c.claim_token,
)
"""The columns a claim returns (a sender's `Job`, and the claim's token)."""


def _claim_statement(dialect: str) -> Update:
    """UPDATE ... RETURNING of the notices among `:ids` still free at `:now`, built once.
    PostgreSQL: the rows are locked in a subquery with `FOR UPDATE SKIP LOCKED`, so several
    processes claim disjoint rows at once; SQLite has one writer, and the UPDATE re-checks
    the lease, so two claimers never take one row."""
    free = (_T.c.id.in_(bindparam("ids", expanding=True)), *_FREE)
    stmt = update(_T)
    if dialect == "postgresql":
        locked = select(_T.c.id).where(*free).with_for_update(skip_locked=True)
        stmt = stmt.where(_T.c.id.in_(locked.scalar_subquery()))
    else:
        stmt = stmt.where(*free)
    return stmt.values(
        claimed_until=bindparam("lease_until"),
        claim_token=bindparam("token"),
        attempts=_T.c.attempts + 1,
    ).returning(*CLAIMED)


_CLAIM = {dialect: _claim_statement(dialect) for dialect in ("postgresql", "sqlite")}


def claim(
    session: Session | Connection,
    ids: list[int],
    *,
    now: datetime,
    lease_until: datetime,
    token: str,
) -> list[Row[Any]]:
    """Claims those of `ids` still free, under `token` until `lease_until`; each claim counts
    as an attempt. Returns the claimed rows (`CLAIMED`), by id. One statement, built once
    (it was a SELECT and an UPDATE per row on PostgreSQL, an UPDATE and a SELECT on SQLite,
    through the ORM: once per notice the outbox sends)."""
    if not ids:
        return []
    params = {"ids": list(ids), "now": now, "lease_until": lease_until, "token": token}
    rows = session.execute(_CLAIM[_dialect(session)], params).all()
    return sorted(rows, key=lambda row: row.id)


def hold(
    session: Session, dedupe_key: str, *, token: str, now: datetime, lease_until: datetime
) -> bool:
    """Claims the notice `dedupe_key`, just recorded in this transaction, for the caller to send
    right after it commits (one claim and one transaction fewer than the outbox's own). Not
    held when an earlier notice of its preregistration is due or being sent: it goes after
    that one, through the outbox, as it would have. If the caller dies, the lease expires and
    the outbox sends it. Returns whether it was held."""
    earlier = aliased(Delivery)
    before = exists().where(
        earlier.preregistration_id == Delivery.preregistration_id,
        earlier.id < Delivery.id,
        earlier.status == "pending",
        (earlier.next_attempt_at <= now) | (earlier.claimed_until >= now),
    )
    stmt = (
        update(Delivery)
        .where(
            Delivery.dedupe_key == dedupe_key,
            Delivery.status == "pending",
            Delivery.claimed_until.is_(None),
            ~before,
        )
        .values(claimed_until=lease_until, claim_token=token, attempts=Delivery.attempts + 1)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).first() is not None


def hand_back(
    conn: Connection | Session, dedupe_key: str, token: str, payload: dict[str, Any]
) -> bool:
    """Gives a held notice (`hold`) back to the outbox with `payload` (what is left to do),
    due at once; the hold does not count as an attempt. One conditional UPDATE."""
    stmt = (
        update(Delivery)
        .where(
            Delivery.dedupe_key == dedupe_key,
            Delivery.claim_token == token,
            Delivery.status == "pending",
        )
        .values(
            payload=payload,
            claimed_until=None,
            claim_token=None,
            attempts=case((Delivery.attempts > 0, Delivery.attempts - 1), else_=0),
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return conn.execute(stmt).first() is not None


def renew(session: Session, held: dict[int, str], *, lease_until: datetime) -> set[int]:
    """Extends the leases of notices being sent (`held`: id -> the claim's token) to
    `lease_until`. Returns the ids still held: a row missing was taken over or finished."""
    if not held:
        return set()
    stmt = (
        update(Delivery)
        .where(
            Delivery.id.in_(list(held)),
            Delivery.claim_token.in_(set(held.values())),
            Delivery.status == "pending",
            Delivery.claimed_until.is_not(None),
        )
        .values(claimed_until=lease_until)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return set(session.scalars(stmt))


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


_RELEASE = (
    update(_T)
    .where(
        _T.c.id == bindparam("delivery_id"),
        _T.c.claim_token == bindparam("token"),
        _T.c.status == "pending",
    )
    .values(
        claimed_until=None,
        claim_token=None,
        attempts=case((_T.c.attempts > 0, _T.c.attempts - 1), else_=0),
    )
    .returning(_T.c.id)
)


def release(session: Session | Connection, delivery_id: int, token: str) -> bool:
    """Gives back a claimed notice that was not tried (paced, or the process is stopping):
    due at once for the next claimer, and the claim does not count as an attempt. One
    conditional UPDATE, built once."""
    params = {"delivery_id": delivery_id, "token": token}
    return session.execute(_RELEASE, params).first() is not None


def pending_for_preregistration(session: Session, preregistration_id: int) -> list[Delivery]:
    stmt = select(Delivery).where(
        Delivery.preregistration_id == preregistration_id, Delivery.status != "sent"
    )
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class OutboxKind:
    kind: str
    depth: int
    oldest_due_at: datetime | None


def outbox_summary(session: Session, *, now: datetime) -> list[OutboxKind]:
    """Per kind, the notices not yet sent (pending) and when the oldest of those due now
    became due: one grouped read of the pending rows (a partial index holds just them)."""
    due = case((Delivery.next_attempt_at <= now, Delivery.next_attempt_at))
    stmt = (
        select(Delivery.kind, func.count(), func.min(due, type_=Delivery.next_attempt_at.type))
        .where(Delivery.status == "pending")
        .group_by(Delivery.kind)
    )
    return [OutboxKind(kind, depth, oldest) for kind, depth, oldest in session.execute(stmt)]
