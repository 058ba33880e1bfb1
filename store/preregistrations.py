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
    true,
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
    Workspace,
)
from store.partners import PARTNER_COLUMNS, SUBMITTER_COLUMNS, submitter_of_org


def _among(statuses: Sequence[str]) -> list[Any]:
    """The statuses as SQL literals, for an IN list written into the statement once instead
    of an expanding parameter that every execution renders again (these are constants)."""
    return [literal_column(f"'{status}'") for status in statuses]


def _in_quota(partner_id: Any, valid_at: str) -> Any:
    """count_in_quota's condition (see there) for `partner_id` (a bound parameter or a
    correlated column), valid at the bound parameter named `valid_at`."""
    t = Preregistration.__table__
    return (
        (t.c.partner_id == partner_id)
        & t.c.status.in_(_among(QUOTA_STATUSES))
        & or_(
            t.c.status != "preregistered",
            t.c.expires_at.is_(None),
            t.c.expires_at > bindparam(valid_at),
        )
    )


# Built once: the submission's reads and count_in_quota run it on every claim.
_COUNT_IN_QUOTA = select(func.count()).where(_in_quota(bindparam("partner_id"), "valid_at"))


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
    found = session.scalar(_LATEST_ID_FOR_PARTNER_EMAIL, {"pid": partner_id, "email": email_norm})
    return None if found is None else get(session, found)


# `/preregister delete <email>` asks this of every address, and mostly finds none (as above).
_LATEST_ID_FOR_PARTNER_EMAIL = (
    select(Preregistration.id)
    .where(
        Preregistration.partner_id == bindparam("pid"),
        Preregistration.email_norm == bindparam("email"),
    )
    .order_by(Preregistration.id.desc())
    .limit(1)
)


def count_in_quota(session: Session, partner_id: int, valid_at: datetime) -> int:
    """The partner's claims in QUOTA_STATUSES still valid at `valid_at`: a preregistration
    whose validity has ended counts no more, whether or not the sweep has expired it yet."""
    return int(
        session.scalar(_COUNT_IN_QUOTA, {"partner_id": partner_id, "valid_at": valid_at}) or 0
    )


_COUNTS_BY_STATUS = (
    select(Preregistration.status, func.count())
    .where(Preregistration.partner_id == bindparam("partner_id"))
    .group_by(Preregistration.status)
)


def counts_by_status(session: Session, partner_id: int) -> dict[str, int]:
    return {
        status: int(n)
        for status, n in session.execute(_COUNTS_BY_STATUS, {"partner_id": partner_id})
    }


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


# The list page of a member, their partner's columns and the total in one statement, built
# once (bound parameters; statuses expanding): the member -> partner look-up costs no round
# trip of its own and no statement is built per request (docs/performance.md, eighth session).
# The member is resolved as store/partners.py `partner_row_for_member` does: a named member,
# else anyone of a workspace whose admins let everyone preregister for its partner.
_PAGE_PARTNER_PREFIX = "partner__"
_MEMBER_PARTNER_ID = (
    select(PartnerMember.partner_id)
    .where(PartnerMember.slack_user_id == bindparam("member"))
    .scalar_subquery()
)
_EVERYONE_PARTNER_ID = (
    select(Workspace.partner_id)
    .where(
        Workspace.org_id == bindparam("org"),
        Workspace.status == "installed",
        Workspace.everyone_may_preregister.is_(True),
        Workspace.partner_id.is_not(None),
    )
    .limit(1)
    .scalar_subquery()
)


def _member_page(with_statuses: bool) -> Any:
    """The member's partner id is a one-row CTE, so the page and its total both use it; the
    total is a count of its own (an index-only scan of partner and status), not a window over
    the page's rows: `count(*) OVER ()` made the database read and sort every matching row
    with all its columns, where the page alone needs only the first `offset + limit`."""
    table = Preregistration.__table__
    me = select(func.coalesce(_MEMBER_PARTNER_ID, _EVERYONE_PARTNER_ID).label("id")).cte("me")
    rows = table.alias("counted")
    counted = select(func.count()).where(rows.c.partner_id == me.c.id).correlate(None)
    stmt = (
        select(*table.c, *(c.label(_PAGE_PARTNER_PREFIX + c.key) for c in PARTNER_COLUMNS))
        .join(Partner, Partner.id == table.c.partner_id)
        .where(table.c.partner_id == me.c.id)
    )
    if with_statuses:
        stmt = stmt.where(table.c.status.in_(bindparam("statuses", expanding=True)))
        counted = counted.where(rows.c.status.in_(bindparam("statuses", expanding=True)))
    total = counted.scalar_subquery().label(PAGE_TOTAL)
    return (
        stmt.add_columns(total)
        .order_by(table.c.submitted_at.desc(), table.c.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


_MEMBER_PAGE = {True: _member_page(True), False: _member_page(False)}


def page_for_member(
    conn: Connection,
    member: str,
    org: str | None,
    *,
    statuses: Sequence[str] | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[Row[Any]], tuple[Any, ...] | None, int]:
    """One page of the preregistrations of `member`'s partner, newest first, as plain rows
    (attributes named as Preregistration's), the partner's columns (as store/partners.py
    `partner_row_for_member`) and the total, in one round trip. An empty page gives no partner
    (None) and 0: the caller then looks the partner up, and counts, on its own."""
    params: dict[str, Any] = {"member": member, "org": org, "offset": offset, "limit": limit}
    if statuses:
        params["statuses"] = list(statuses)
    rows = list(conn.execute(_MEMBER_PAGE[bool(statuses)], params))
    if not rows:
        return rows, None, 0
    first = rows[0]._mapping
    partner = tuple(first[_PAGE_PARTNER_PREFIX + c.key] for c in PARTNER_COLUMNS)
    return rows, partner, int(first[PAGE_TOTAL])


# `/preregister check` in one statement, built once: the member's partner, the customer's
# directory record, the live claim on the customer and the partner's quota count (as
# `count_in_quota`), instead of four queries in a transaction.
ACCOUNT_PREFIX = "account__"
LIVE_PREFIX = "live__"
QUOTA_USED = "quota_used"
_LIVE_CLAIM = (
    select(
        Preregistration.id,
        Preregistration.status,
        Preregistration.partner_id,
        Preregistration.expires_at,
    )
    .where(
        Preregistration.email_norm == bindparam("email_norm"),
        Preregistration.status.in_(LIVE_STATUSES),
    )
    .limit(1)
    .subquery()
)
_QUOTA_COUNT = (
    select(func.count()).where(_in_quota(Partner.id, "now")).correlate(Partner).scalar_subquery()
)
_ACCOUNT_COLUMNS = tuple(DirectoryAccount.__table__.c)
_ELIGIBILITY = (
    select(
        Partner.id,
        Partner.name,
        Partner.country,
        Partner.active,
        Partner.contact_email,
        Partner.contact_mobile,
        *(c.label(ACCOUNT_PREFIX + c.key) for c in _ACCOUNT_COLUMNS),
        *(c.label(LIVE_PREFIX + c.key) for c in _LIVE_CLAIM.c),
        _QUOTA_COUNT.label(QUOTA_USED),
    )
    .select_from(Partner)
    .outerjoin(
        DirectoryAccount.__table__,
        DirectoryAccount.email_norm == bindparam("email_norm"),
    )
    .outerjoin(_LIVE_CLAIM, true())
    .where(Partner.id == func.coalesce(_MEMBER_PARTNER_ID, _EVERYONE_PARTNER_ID))
)


def eligibility_facts(
    conn: Connection, member: str, org: str | None, email_norm: str, now: datetime
) -> Row[Any] | None:
    """What `/preregister check` decides on, in one round trip; None when `member` belongs to
    no partner. Columns: the partner's (id, name, country, active, contact_email,
    contact_mobile), the directory record's (ACCOUNT_PREFIX + column; all None without one),
    the live claim's (LIVE_PREFIX + id, status, partner_id, expires_at; None without one) and
    QUOTA_USED, the partner's claims counting against its quota at `now`."""
    params = {"member": member, "org": org, "email_norm": email_norm, "now": now}
    return conn.execute(_ELIGIBILITY, params).first()


def directory_account_of(facts: Row[Any]) -> DirectoryAccount | None:
    """The directory record in `eligibility_facts`' row (a transient object), or None."""
    m = facts._mapping
    if m[ACCOUNT_PREFIX + "email_norm"] is None:
        return None
    return DirectoryAccount(**{c.key: m[ACCOUNT_PREFIX + c.key] for c in _ACCOUNT_COLUMNS})


def count_for_partner(
    session: Session | Connection, partner_id: int, statuses: Sequence[str] | None = None
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


def _expiring(of_partner: bool, limited: bool) -> Any:
    stmt = select(Preregistration).where(
        Preregistration.status == "preregistered",
        Preregistration.expires_at >= bindparam("start"),
        Preregistration.expires_at < bindparam("end"),
    )
    if of_partner:
        stmt = stmt.where(Preregistration.partner_id == bindparam("partner_id"))
    stmt = stmt.order_by(Preregistration.expires_at)
    return stmt.limit(bindparam("limit")) if limited else stmt


# Built once (App Home reads it on every opening): (for one partner, limited) -> select.
_EXPIRING = {(p, n): _expiring(p, n) for p in (False, True) for n in (False, True)}


def expiring_between(
    session: Session,
    start: datetime,
    end: datetime,
    partner_id: int | None = None,
    limit: int | None = None,
) -> list[Preregistration]:
    """Preregistered rows whose validity ends in [start, end).

    Served by the partial index ix_preregistrations_expiring."""
    stmt = _EXPIRING[partner_id is not None, limit is not None]
    params = {"start": start, "end": end, "partner_id": partner_id, "limit": limit}
    return list(session.scalars(stmt, params))


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


# The review queue's reads, built once. The status is written into the SQL, not bound, so
# that the condition of the partial index ix_preregistrations_review_queue (`status =
# 'under_review'`) is seen by any plan (PostgreSQL's generic plan of a prepared statement
# cannot match a bound value against it).
_UNDER_REVIEW = Preregistration.status == literal_column("'under_review'")
_REVIEW_QUEUE = (
    select(Preregistration)
    .options(joinedload(Preregistration.partner))
    .where(_UNDER_REVIEW)
    .order_by(Preregistration.submitted_at, Preregistration.id)
    .limit(bindparam("limit"))
)
_COUNT_UNDER_REVIEW = select(func.count()).where(_UNDER_REVIEW)


def review_queue(session: Session, limit: int = 50) -> list[Preregistration]:
    """The oldest requests under review, each with its partner (one query, not one a row)."""
    return list(session.scalars(_REVIEW_QUEUE, {"limit": limit}))


def count_under_review(session: Session) -> int:
    return int(session.scalar(_COUNT_UNDER_REVIEW) or 0)


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
