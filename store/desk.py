"""Queries of the managers' desk: similar requests at one email domain, the reviewer of a case,
action_required rows coming due, the program overview and the weekly report's rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, literal_column, or_, select, union_all, update
from sqlalchemy.orm import Session, joinedload

from store.models import LIVE_STATUSES, AuditEvent, Partner, Preregistration


def same_domain(
    session: Session, domain: str, exclude_id: int, since: datetime, limit: int
) -> list[Preregistration]:
    """Other rows at `domain` that are live or were submitted since `since`, newest first.
    Served by ix_preregistrations_email_domain (email_domain, submitted_at)."""
    stmt = (
        select(Preregistration)
        .options(joinedload(Preregistration.partner))
        .where(
            Preregistration.email_domain == domain,
            Preregistration.id != exclude_id,
            or_(
                Preregistration.submitted_at >= since,
                Preregistration.status.in_(LIVE_STATUSES),
            ),
        )
        .order_by(Preregistration.submitted_at.desc(), Preregistration.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def set_reviewer(
    session: Session,
    preregistration_id: int,
    reviewer: str | None,
    at: datetime,
    *,
    statuses: Sequence[str],
    only_if: str | None = None,
    only_if_free: bool = False,
) -> bool:
    """Conditional update of the case's reviewer: of two managers taking it, one wins."""
    stmt = update(Preregistration).where(
        Preregistration.id == preregistration_id, Preregistration.status.in_(statuses)
    )
    if only_if_free:
        stmt = stmt.where(Preregistration.reviewer.is_(None))
    if only_if is not None:
        stmt = stmt.where(Preregistration.reviewer == only_if)
    result = session.execute(
        stmt.values(reviewer=reviewer, reviewer_at=at).execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def info_due_between(
    session: Session, after: datetime | None, until: datetime, limit: int
) -> list[int]:
    """Ids of action_required rows whose answer is due in (after, until]. Served by
    ix_preregistrations_info_due."""
    conditions = [
        Preregistration.status == "action_required",
        Preregistration.info_due_at <= until,
    ]
    if after is not None:
        conditions.append(Preregistration.info_due_at > after)
    stmt = (
        select(Preregistration.id)
        .where(*conditions)
        .order_by(Preregistration.info_due_at, Preregistration.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


_COUNTS_BY_PARTNER = (
    select(Preregistration.partner_id, Preregistration.status, func.count())
    .where(Preregistration.partner_id.in_(bindparam("ids", expanding=True)))
    .group_by(Preregistration.partner_id, Preregistration.status)
)


def counts_by_partner(session: Session, partner_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """partner id -> status -> rows, for the given partners (ix_preregistrations_partner_status
    covers it)."""
    found: dict[int, dict[str, int]] = {}
    for partner_id, status, n in session.execute(_COUNTS_BY_PARTNER, {"ids": list(partner_ids)}):
        found.setdefault(partner_id, {})[status] = int(n)
    return found


def _program_statement(by_quota: bool) -> Any:
    """The program page's select, built once (bound `now`, `end` = offset + limit, `offset`,
    `limit`): building it took more CPU than SQLite running it (docs/performance.md, ninth
    session). The lapsed claims' status is written into the SQL, not bound, so that the
    condition of the partial index ix_preregistrations_expiring (`status = 'preregistered'`)
    is seen by any plan (PostgreSQL's generic plan of a prepared statement cannot match a
    bound value against it). They are grouped by `partner_id + 0`, not by the column: SQLite
    otherwise read the whole table in ix_preregistrations_partner_status order (to group
    without a sort) instead of the few lapsed claims from the partial index, 20x slower at
    3,000 rows and growing with the table (PostgreSQL reads the partial index either way)."""
    partner = Preregistration.partner_id + literal_column("0")
    lapsed = (
        select(partner.label("partner_id"), func.count().label("n"))
        .where(
            Preregistration.status == literal_column("'preregistered'"),
            Preregistration.expires_at <= bindparam("now"),
        )
        .group_by(partner)
        .subquery()
    )
    if by_quota:
        held = Partner.quota_held.label("used")
        plain = (
            select(Partner.id, Partner.name, Partner.country, held)
            .where(Partner.id.not_in(select(lapsed.c.partner_id)))
            .order_by(Partner.quota_held.desc(), Partner.name)
            .limit(bindparam("end"))
            .subquery()
        )

        # one key probe of partners per partner with lapsed claims: a join let PostgreSQL
        # hash every partner
        def of_partner(column: Any) -> Any:
            return select(column).where(Partner.id == lapsed.c.partner_id).scalar_subquery()

        corrected = select(
            lapsed.c.partner_id,
            of_partner(Partner.name),
            of_partner(Partner.country),
            of_partner(Partner.quota_held) - lapsed.c.n,
        )
        merged = union_all(select(plain), corrected).subquery()
        stmt = select(merged).order_by(merged.c.used.desc(), merged.c.name)
    else:
        used = (Partner.quota_held - func.coalesce(lapsed.c.n, 0)).label("used")
        stmt = (
            select(Partner.id, Partner.name, Partner.country, used)
            .outerjoin(lapsed, lapsed.c.partner_id == Partner.id)
            .order_by(Partner.name)
        )
    return stmt.offset(bindparam("offset")).limit(bindparam("limit"))


_PROGRAM_PAGE = {True: _program_statement(True), False: _program_statement(False)}
_PARTNER_COUNT = select(func.count()).select_from(Partner)


def program_page(
    session: Session, now: datetime, by_quota: bool, offset: int, limit: int
) -> tuple[list[Row[tuple[int, str, str, int]]], int]:
    """One page of (id, name, country, quota used) of the partners, by quota use (most first,
    then name) or by name, and how many partners there are. Quota use: the partner's
    `quota_held` (rows in QUOTA_STATUSES, kept by triggers) less its claims whose validity has
    ended but that the sweep has not expired yet ("lapsed", a few at most: read from
    ix_preregistrations_expiring). Both orders are read from an index and stop at the page:
    by quota, the partners without lapsed claims in ix_partners_quota order (quota_held DESC,
    name) up to the page's end, merged with the few that have lapsed claims, their use
    corrected; by name, the unique index on the name."""
    params = {"now": now, "end": offset + limit, "offset": offset, "limit": limit}
    total = session.scalar(_PARTNER_COUNT) or 0
    return list(session.execute(_PROGRAM_PAGE[by_quota], params)), int(total)


_LAST_ACTIVITY = (
    select(AuditEvent.partner_id, func.max(AuditEvent.at))
    .where(AuditEvent.partner_id.in_(bindparam("ids", expanding=True)))
    .group_by(AuditEvent.partner_id)
)


def last_activity_by_partner(session: Session, partner_ids: Sequence[int]) -> dict[int, datetime]:
    """The latest audit event of each of the given partners."""
    return {pid: at for pid, at in session.execute(_LAST_ACTIVITY, {"ids": list(partner_ids)})}


def report_rows(session: Session, since: datetime) -> list[tuple]:
    """What the weekly report counts: rows submitted or decided since `since`."""
    stmt = select(
        Preregistration.status,
        Preregistration.submitted_at,
        Preregistration.expires_at,
        Preregistration.associated_at,
        Preregistration.decided_at,
        Preregistration.decided_by,
        Preregistration.review_due_at,
    ).where(or_(Preregistration.submitted_at >= since, Preregistration.decided_at >= since))
    return [tuple(row) for row in session.execute(stmt)]
