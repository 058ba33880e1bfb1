"""Queries on preregistrations. Rules decide; these functions only read and write rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Row,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, joinedload

from store import audit, deliveries
from store.models import (
    LIVE_STATUSES,
    QUOTA_STATUSES,
    AuditEvent,
    Delivery,
    DirectoryAccount,
    Partner,
    PartnerMember,
    Preregistration,
)
from store.partners import SUBMITTER_COLUMNS, submitter_of_org


def _among(statuses: Sequence[str]) -> list[Any]:
    """The statuses as SQL literals, for an IN list written into the statement once instead
    of an expanding parameter that every execution renders again (these are constants)."""
    return [literal_column(f"'{status}'") for status in statuses]


# count_in_quota's condition (see there), partner and time bound; built once.
_IN_QUOTA = (
    (Preregistration.__table__.c.partner_id == bindparam("partner_id"))
    & Preregistration.__table__.c.status.in_(_among(QUOTA_STATUSES))
    & or_(
        Preregistration.__table__.c.status != "preregistered",
        Preregistration.__table__.c.expires_at.is_(None),
        Preregistration.__table__.c.expires_at > bindparam("valid_at"),
    )
)
_COUNT_IN_QUOTA = select(func.count()).where(_IN_QUOTA)


def get(
    session: Session, preregistration_id: int, *, for_update: bool = False
) -> Preregistration | None:
    stmt = select(Preregistration).where(Preregistration.id == preregistration_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def get_with_partner(session: Session, preregistration_id: int) -> Preregistration | None:
    """The row with its partner loaded in the same query."""
    stmt = (
        select(Preregistration)
        .options(joinedload(Preregistration.partner))
        .where(Preregistration.id == preregistration_id)
    )
    return session.scalars(stmt).first()


# The submission asks both of a new customer and a new request, and the answer is almost always
# "none": these look for the id alone, built once, and load the row only when there is one.
# Selecting the whole row cost more than the look-up itself (the driver describes its ~40
# columns even for no row; py-spy under bench/throughput.py).
_ID_BY_REQUEST_KEY = select(Preregistration.id).where(
    Preregistration.request_key == bindparam("key")
)
_LIVE_ID_FOR_EMAIL = select(Preregistration.id).where(
    Preregistration.email_norm == bindparam("email_norm"),
    Preregistration.status.in_(_among(LIVE_STATUSES)),
)


def by_request_key(session: Session, key: str) -> Preregistration | None:
    found = session.scalar(_ID_BY_REQUEST_KEY, {"key": key})
    return None if found is None else get(session, found)


def live_for_email(session: Session, email_norm: str) -> Preregistration | None:
    found = session.scalars(_LIVE_ID_FOR_EMAIL, {"email_norm": email_norm}).first()
    return None if found is None else get(session, found)


# --- the submission's reads and write, each one round trip ------------------------------------
# A submission used to run four reads after the partner's lock (the replay check, the live claim,
# the directory entry, the quota count) and three ORM/Core writes: the web process spent more
# CPU in SQLAlchemy around each statement than in the statements (py-spy under
# bench/throughput.py). These are built once and executed on the session's connection.

_TABLE = Preregistration.__table__
_ONE_ROW = select(literal_column("1").label("one")).subquery("one_row")
_REPLAY_ID = select(_TABLE.c.id).where(_TABLE.c.request_key == bindparam("key")).scalar_subquery()

_SUBMITTER = select(_REPLAY_ID.label("replay_id"), *SUBMITTER_COLUMNS).select_from(
    _ONE_ROW.outerjoin(PartnerMember, PartnerMember.slack_user_id == bindparam("member")).outerjoin(
        Partner, Partner.id == PartnerMember.partner_id
    )
)


@dataclass(frozen=True)
class Submitter:
    """Who submits, read before the partner's lock: the request's row if it was already
    recorded, and the member's partner if there is one."""

    replay_id: int | None
    partner: tuple[Any, ...] | None
    """The values of SUBMITTER_COLUMNS, in their order."""


def submitter(conn: Connection, member: str, org: str | None, key: str | None) -> Submitter:
    """One round trip for the request key and the named member's partner; a second only for a
    member of a workspace whose admins let everyone preregister (store.partners)."""
    row = conn.execute(_SUBMITTER, {"key": key, "member": member}).one()
    partner: tuple[Any, ...] | None = tuple(row[1:]) if row.id is not None else None
    if partner is None and org is not None:
        found = submitter_of_org(conn, org)
        partner = None if found is None else tuple(found)
    return Submitter(row.replay_id, partner)


_LIVE = _TABLE.alias("live")
_DIRECTORY = DirectoryAccount.__table__


class DirectoryFacts(NamedTuple):
    """What the rules read of a directory entry (attributes named as DirectoryAccount's)."""

    country: str
    china_mainland: bool
    associated_partner: str | None
    consumer: bool
    contract: bool
    cash_spend: bool
    direct_sales_preregistered: bool
    enterprise_master: bool


class LiveClaim(NamedTuple):
    """What the rules read of the customer's live claim."""

    id: int
    status: str
    partner_id: int
    expires_at: datetime | None


_CLAIM_READS = select(
    _REPLAY_ID.label("replay_id"),
    _COUNT_IN_QUOTA.scalar_subquery().label("in_quota"),
    _LIVE.c.id.label("live_id"),
    _LIVE.c.status.label("live_status"),
    _LIVE.c.partner_id.label("live_partner_id"),
    _LIVE.c.expires_at.label("live_expires_at"),
    _DIRECTORY.c.email_norm.label("account_email"),
    *(_DIRECTORY.c[name] for name in DirectoryFacts._fields),
).select_from(
    _ONE_ROW.outerjoin(
        _LIVE,
        (_LIVE.c.email_norm == bindparam("email_norm")) & _LIVE.c.status.in_(_among(LIVE_STATUSES)),
    ).outerjoin(_DIRECTORY, _DIRECTORY.c.email_norm == bindparam("email_norm"))
)


@dataclass(frozen=True)
class ClaimReads:
    """What the rules read under the partner's lock, from one SELECT (one scalar subquery or
    outer join each): the same statements' answers as by_request_key, live_for_email,
    directory.account and count_in_quota."""

    replay_id: int | None
    in_quota: int
    live: LiveClaim | None
    """At most one: uq_preregistrations_live_email."""
    account: DirectoryFacts | None


def claim_reads(
    conn: Connection, *, key: str | None, email_norm: str, partner_id: int, valid_at: datetime
) -> ClaimReads:
    row = conn.execute(
        _CLAIM_READS,
        {"key": key, "email_norm": email_norm, "partner_id": partner_id, "valid_at": valid_at},
    ).one()
    live = None if row.live_id is None else LiveClaim(*row[2:6])
    account = None if row.account_email is None else DirectoryFacts(*row[7:])
    return ClaimReads(row.replay_id, int(row.in_quota or 0), live, account)


_INSERT = insert(_TABLE).returning(_TABLE.c.id)

CLAIM_COLUMNS = (
    "partner_id",
    "full_name",
    "email",
    "email_norm",
    "email_domain",
    "mobile",
    "send_invitation",
    "association_type",
    "customer_country",
    "submitted_by",
    "submitted_at",
    "request_key",
    "invite_failed_attempts",
    "status",
    "review_reason",
    "review_due_at",
    "expires_at",
)
"""The columns a new claim is inserted with (`insert_claim`'s values); every other one is
NULL or its default."""


def _pg_insert_claim() -> Any:
    """PostgreSQL: the row, its audit event and its notice in one statement (data-modifying
    CTEs; the foreign keys are checked at the statement's end), answering the row's id."""
    audit_table, outbox = AuditEvent.__table__, Delivery.__table__
    new = (
        insert(_TABLE)
        .values({name: bindparam(f"v_{name}", type_=_TABLE.c[name].type) for name in CLAIM_COLUMNS})
        .returning(_TABLE.c.id)
        .cte("new_row")
    )
    at = bindparam("v_submitted_at", type_=_TABLE.c.submitted_at.type)
    audit_row = (
        insert(audit_table)
        .from_select(
            ["at", "actor", "action", "result", "preregistration_id", "partner_id", "detail"],
            select(
                at,
                bindparam("v_submitted_by", type_=audit_table.c.actor.type),
                literal_column("'preregister'"),
                bindparam("v_status", type_=audit_table.c.result.type),
                new.c.id,
                bindparam("v_partner_id", type_=audit_table.c.partner_id.type),
                bindparam("audit_detail", type_=audit_table.c.detail.type),
            ),
        )
        .cte("audit_row")
    )
    kind = bindparam("notice_kind", type_=String())
    notice = (
        pg_insert(outbox)
        .from_select(
            [
                "kind",
                "dedupe_key",
                "payload",
                "status",
                "attempts",
                "next_attempt_at",
                "preregistration_id",
                "created_at",
            ],
            select(
                kind,
                kind + literal_column("':'") + cast(new.c.id, String()),
                func.json_build_object(literal_column("'preregistration_id'"), new.c.id),
                literal_column("'pending'"),
                literal_column("0"),
                at,
                new.c.id,
                at,
            ),
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .cte("notice_row")
    )
    return select(new.c.id).add_cte(audit_row, notice)


_PG_INSERT_CLAIM = _pg_insert_claim()


def insert_claim(
    conn: Connection, values: Mapping[str, Any], audit_detail: dict[str, Any], notice_kind: str
) -> int:
    """A new claim (`values`: CLAIM_COLUMNS), its audit event ("preregister", by the submitter,
    with its status as the result) and its notice (`notice_kind`, keyed by kind and row id,
    store.deliveries.enqueue's row). One round trip on PostgreSQL; three Core statements on
    SQLite, which has no data-modifying CTEs. Returns the row's id."""
    if conn.dialect.name == "postgresql":
        params = {f"v_{name}": values[name] for name in CLAIM_COLUMNS}
        params.update(audit_detail=audit_detail, notice_kind=notice_kind)
        return int(conn.execute(_PG_INSERT_CLAIM, params).scalar_one())
    row_id = int(conn.execute(_INSERT, {name: values[name] for name in CLAIM_COLUMNS}).scalar_one())
    audit.record(
        conn,
        at=values["submitted_at"],
        actor=values["submitted_by"],
        action="preregister",
        result=values["status"],
        preregistration_id=row_id,
        partner_id=values["partner_id"],
        detail=audit_detail,
    )
    deliveries.enqueue(
        conn,
        kind=notice_kind,
        dedupe_key=f"{notice_kind}:{row_id}",
        payload={"preregistration_id": row_id},
        now=values["submitted_at"],
        preregistration_id=row_id,
    )
    return row_id


def latest_for_partner_email(
    session: Session, partner_id: int, email_norm: str
) -> Preregistration | None:
    stmt = (
        select(Preregistration)
        .where(Preregistration.partner_id == partner_id, Preregistration.email_norm == email_norm)
        .order_by(Preregistration.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def count_in_quota(session: Session, partner_id: int, valid_at: datetime) -> int:
    """The partner's claims in QUOTA_STATUSES still valid at `valid_at`: a preregistration
    whose validity has ended counts no more, whether or not the sweep has expired it yet."""
    return int(
        session.scalar(_COUNT_IN_QUOTA, {"partner_id": partner_id, "valid_at": valid_at}) or 0
    )


def counts_by_status(session: Session, partner_id: int) -> dict[str, int]:
    stmt = (
        select(Preregistration.status, func.count())
        .where(Preregistration.partner_id == partner_id)
        .group_by(Preregistration.status)
    )
    return {status: int(n) for status, n in session.execute(stmt)}


def for_partner(
    session: Session,
    partner_id: int,
    *,
    statuses: Sequence[str] | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[Preregistration]:
    stmt = select(Preregistration).where(Preregistration.partner_id == partner_id)
    if statuses:
        stmt = stmt.where(Preregistration.status.in_(statuses))
    stmt = stmt.order_by(Preregistration.submitted_at.desc(), Preregistration.id.desc())
    stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


PAGE_TOTAL = "page_total"


def page_for_partner(
    session: Session,
    partner_id: int,
    *,
    statuses: Sequence[str] | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[Row[Any]], int]:
    """One page of the partner's preregistrations, newest first, as plain rows (attributes
    named as Preregistration's, no ORM objects to build), and how many there are in all: one
    round trip (a window count over the filtered rows) unless the page is empty."""
    table = Preregistration.__table__
    stmt = select(*table.c, func.count().over().label(PAGE_TOTAL)).where(
        table.c.partner_id == partner_id
    )
    if statuses:
        stmt = stmt.where(table.c.status.in_(statuses))
    stmt = stmt.order_by(table.c.submitted_at.desc(), table.c.id.desc()).offset(offset)
    rows = list(session.execute(stmt.limit(limit)))
    if rows:
        return rows, int(getattr(rows[0], PAGE_TOTAL))
    return rows, count_for_partner(session, partner_id, statuses)


def count_for_partner(
    session: Session, partner_id: int, statuses: Sequence[str] | None = None
) -> int:
    stmt = select(func.count()).where(Preregistration.partner_id == partner_id)
    if statuses:
        stmt = stmt.where(Preregistration.status.in_(statuses))
    return int(session.scalar(stmt) or 0)


def for_email(session: Session, email_norm: str) -> list[Preregistration]:
    """Every preregistration of the customer, oldest first (ix_preregistrations_email_norm)."""
    stmt = select(Preregistration).where(Preregistration.email_norm == email_norm)
    return list(session.scalars(stmt.order_by(Preregistration.id)))


def all_rows(session: Session, partner_id: int | None = None) -> list[Preregistration]:
    stmt = select(Preregistration).order_by(Preregistration.id)
    if partner_id is not None:
        stmt = stmt.where(Preregistration.partner_id == partner_id)
    return list(session.scalars(stmt))


def expiring_between(
    session: Session,
    start: datetime,
    end: datetime,
    partner_id: int | None = None,
    limit: int | None = None,
) -> list[Preregistration]:
    """Preregistered rows whose validity ends in [start, end).

    Served by the partial index ix_preregistrations_expiring."""
    stmt = select(Preregistration).where(
        Preregistration.status == "preregistered",
        Preregistration.expires_at >= start,
        Preregistration.expires_at < end,
    )
    if partner_id is not None:
        stmt = stmt.where(Preregistration.partner_id == partner_id)
    stmt = stmt.order_by(Preregistration.expires_at)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def due_to_expire_ids(session: Session, now: datetime, limit: int = 500) -> list[int]:
    stmt = (
        select(Preregistration.id)
        .where(Preregistration.status == "preregistered", Preregistration.expires_at <= now)
        .order_by(Preregistration.expires_at)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def reviews_due_before(
    session: Session, end: datetime, limit: int | None = None
) -> list[Preregistration]:
    """Under-review rows due before `end`: served by ix_preregistrations_review_due."""
    stmt = (
        select(Preregistration)
        .where(Preregistration.status == "under_review", Preregistration.review_due_at < end)
        .order_by(Preregistration.review_due_at)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def review_queue(session: Session, limit: int = 50) -> list[Preregistration]:
    stmt = (
        select(Preregistration)
        .where(Preregistration.status == "under_review")
        .order_by(Preregistration.submitted_at, Preregistration.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def count_under_review(session: Session) -> int:
    stmt = select(func.count()).where(Preregistration.status == "under_review")
    return int(session.scalar(stmt) or 0)


def transition(
    session: Session, preregistration_id: int, from_statuses: Sequence[str], **values: object
) -> bool:
    """Conditional update: changes the row only if it still has one of `from_statuses`.
    Returns whether it did, so two deciders (or a decider and the sweep) cannot both win."""
    result = session.execute(
        update(Preregistration)
        .where(Preregistration.id == preregistration_id, Preregistration.status.in_(from_statuses))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def add(session: Session, row: Preregistration) -> Preregistration:
    session.add(row)
    session.flush()
    return row
