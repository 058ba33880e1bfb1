"""Queries on partners, their members and the ecosystem managers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update
from sqlalchemy.orm import Session

from store.models import ChannelLanguage, Manager, Partner, PartnerMember, Workspace

# A member is either named (partner_members) or, when `org` is given, anyone of a workspace
# whose admins let everyone preregister for the partner it is linked to.
_EVERYONE_OF_ORG = (
    (Workspace.org_id == bindparam("org"))
    & (Workspace.status == "installed")
    & Workspace.everyone_may_preregister.is_(True)
)


def partner_for_member(
    session: Session, slack_user_id: str, org: str | None = None
) -> Partner | None:
    partner = session.scalars(_MEMBER_PARTNER_ORM, {"slack_user_id": slack_user_id}).first()
    if partner is None and org is not None:
        partner = session.scalars(_EVERYONE_PARTNER_ORM, {"org": org}).first()
    return partner


# Built once (see below): every change a member makes starts with this look-up.
_MEMBER_PARTNER_ORM = (
    select(Partner)
    .join(PartnerMember, PartnerMember.partner_id == Partner.id)
    .where(PartnerMember.slack_user_id == bindparam("slack_user_id"))
)
_EVERYONE_PARTNER_ORM = (
    select(Partner).join(Workspace, Workspace.partner_id == Partner.id).where(_EVERYONE_OF_ORG)
)


PARTNER_COLUMNS = (
    Partner.id,
    Partner.name,
    Partner.country,
    Partner.contact_email,
    Partner.contact_mobile,
    Partner.notice_channel_id,
    Partner.digest_channel_id,
    Partner.language,
)
"""A partner's columns in PartnerView's order: the member look-ups here and the list page's
select (store/preregistrations.py) read them."""


# The request-path statements are built once, with a bound parameter: building a select from
# ORM attributes costs more CPU than running it (~0.4 ms against ~0.3 ms; bench/ack_latency.py).
_MEMBER_PARTNER = (
    select(*PARTNER_COLUMNS)
    .join(PartnerMember, PartnerMember.partner_id == Partner.id)
    .where(PartnerMember.slack_user_id == bindparam("slack_user_id"))
)
_MANAGER = select(Manager.slack_user_id).where(Manager.slack_user_id == bindparam("slack_user_id"))


_EVERYONE_PARTNER = (
    select(*PARTNER_COLUMNS)
    .join(Workspace, Workspace.partner_id == Partner.id)
    .where(_EVERYONE_OF_ORG)
)


SUBMITTER_COLUMNS = (*PARTNER_COLUMNS, Partner.active)
"""The partner as the preregistration path reads it: the columns of a PartnerView and `active`."""

_EVERYONE_SUBMITTER = (
    select(*SUBMITTER_COLUMNS)
    .join(Workspace, Workspace.partner_id == Partner.id)
    .where(_EVERYONE_OF_ORG)
)


def submitter_of_org(conn: Connection, org: str) -> Row[Any] | None:
    """The partner of the workspace `org` when everyone there may preregister for it, with the
    columns of SUBMITTER_COLUMNS."""
    return conn.execute(_EVERYONE_SUBMITTER, {"org": org}).first()


def partner_row_for_member(
    conn: Connection, slack_user_id: str, org: str | None = None
) -> Row[Any] | None:
    """The member's partner as a plain row: the cheap look-up for the request path."""
    row = conn.execute(_MEMBER_PARTNER, {"slack_user_id": slack_user_id}).first()
    if row is None and org is not None:
        row = conn.execute(_EVERYONE_PARTNER, {"org": org}).first()
    return row


def manager_exists(conn: Connection | Session, slack_user_id: str) -> bool:
    return conn.execute(_MANAGER, {"slack_user_id": slack_user_id}).first() is not None


def partner_by_name(session: Session, name: str) -> Partner | None:
    return session.scalars(select(Partner).where(Partner.name == name)).first()


def partner_by_id(session: Session, partner_id: int) -> Partner | None:
    return session.get(Partner, partner_id)


def all_partners(session: Session) -> list[Partner]:
    return list(session.scalars(select(Partner).order_by(Partner.name)))


def partner_names(session: Session) -> set[str]:
    return set(session.scalars(select(Partner.name)))


def member_ids(session: Session, partner_id: int) -> list[str]:
    stmt = select(PartnerMember.slack_user_id).where(PartnerMember.partner_id == partner_id)
    return list(session.scalars(stmt.order_by(PartnerMember.slack_user_id)))


def member_partner_id(session: Session, slack_user_id: str, org: str | None = None) -> int | None:
    partner_id = session.scalar(
        select(PartnerMember.partner_id).where(PartnerMember.slack_user_id == slack_user_id)
    )
    if partner_id is None and org is not None:
        everyone = select(Workspace.partner_id).where(_EVERYONE_OF_ORG)
        partner_id = session.scalar(everyone, {"org": org})
    return partner_id


def add_partner(
    session: Session,
    *,
    name: str,
    country: str,
    contact_email: str | None,
    contact_mobile: str | None,
    now: datetime,
) -> Partner:
    partner = Partner(
        name=name,
        country=country,
        contact_email=contact_email,
        contact_mobile=contact_mobile,
        created_at=now,
        lock_version=0,
    )
    session.add(partner)
    session.flush()
    return partner


def add_member(session: Session, partner_id: int, slack_user_id: str, now: datetime) -> None:
    session.add(PartnerMember(slack_user_id=slack_user_id, partner_id=partner_id, created_at=now))
    session.flush()


def lock_partner(session: Session, partner_id: int) -> None:
    """Serialise writers for one partner (R4's cap). An UPDATE takes PostgreSQL's row lock and
    SQLite's write lock alike, so the count that follows cannot race another writer."""
    session.execute(
        update(Partner)
        .where(Partner.id == partner_id)
        .values(lock_version=Partner.lock_version + 1)
    )


# Core, on the table, built once. Executed through the ORM (`update(Partner)`), SQLAlchemy
# annotates the statement, and the class it makes for that on first use is registered before it
# is marked cacheable: threads that raced to that first use could leave it uncached for the
# process's life (SAWarning "AnnotatedUpdate will not make use of SQL compilation caching", then
# this UPDATE compiled on every submission: 40% of `preregister` in a py-spy profile).
_LOCK_ACTIVE = (
    update(Partner.__table__)
    .where(Partner.__table__.c.id == bindparam("partner_id"))
    .values(lock_version=Partner.__table__.c.lock_version + 1)
    .returning(Partner.__table__.c.active)
)


def lock_active_partner(session: Session, partner_id: int) -> bool:
    """`lock_partner`, and whether the partner is active as read under that lock, in one round
    trip (UPDATE ... RETURNING)."""
    active = session.connection().execute(_LOCK_ACTIVE, {"partner_id": partner_id}).scalar()
    return bool(active)


def set_notice_channel(session: Session, partner_id: int, channel_id: str | None) -> None:
    session.execute(
        update(Partner).where(Partner.id == partner_id).values(notice_channel_id=channel_id)
    )


def set_language(session: Session, partner_id: int, language: str) -> None:
    session.execute(update(Partner).where(Partner.id == partner_id).values(language=language))


def set_channel_language(
    session: Session, channel: str, language: str, set_by: str, now: datetime
) -> None:
    row = session.get(ChannelLanguage, channel)
    if row is None:
        session.add(ChannelLanguage(channel=channel, language=language, set_by=set_by, set_at=now))
    else:
        row.language, row.set_by, row.set_at = language, set_by, now


def channel_language(session: Session, channel: str) -> str | None:
    row = session.get(ChannelLanguage, channel)
    return None if row is None else row.language


def set_digest_channel(session: Session, partner_id: int, channel_id: str | None) -> None:
    session.execute(
        update(Partner).where(Partner.id == partner_id).values(digest_channel_id=channel_id)
    )


def is_active(session: Session, partner_id: int) -> bool:
    """Read afresh (not from the session's identity map), for use after lock_partner."""
    return bool(session.scalar(select(Partner.active).where(Partner.id == partner_id)))


def set_active(session: Session, partner_id: int, active: bool) -> None:
    session.execute(update(Partner).where(Partner.id == partner_id).values(active=active))


def update_partner(session: Session, partner_id: int, **values: object) -> None:
    """Sets the given columns (name, country, contact_email, contact_mobile)."""
    session.execute(update(Partner).where(Partner.id == partner_id).values(**values))


def remove_member(session: Session, slack_user_id: str) -> int | None:
    """Removes the member; returns the partner it belonged to, or None if it was no member."""
    member = session.get(PartnerMember, slack_user_id)
    if member is None:
        return None
    partner_id = member.partner_id
    session.delete(member)
    session.flush()
    return partner_id


def remove_manager(session: Session, slack_user_id: str) -> bool:
    manager = session.get(Manager, slack_user_id)
    if manager is None:
        return False
    session.delete(manager)
    session.flush()
    return True


def is_manager(session: Session, slack_user_id: str) -> bool:
    return manager_exists(session, slack_user_id)


def managers(session: Session) -> list[Manager]:
    return list(session.scalars(select(Manager).order_by(Manager.created_at)))


def manager_contacts(conn: Connection) -> list[tuple[str, str | None]]:
    """(Slack user id, email) of every manager, oldest first: one Core select, no ORM."""
    return [(user, email) for user, email in conn.execute(_MANAGER_CONTACTS)]


_MANAGER_CONTACTS = select(Manager.slack_user_id, Manager.email).order_by(Manager.created_at)
"""Built once: read on every reply that names the managers (R13)."""


def add_manager(session: Session, slack_user_id: str, email: str | None, now: datetime) -> bool:
    """Returns False when the manager was already registered (the email is updated)."""
    existing = session.get(Manager, slack_user_id)
    if existing is not None:
        if email:
            existing.email = email
        return False
    session.add(Manager(slack_user_id=slack_user_id, email=email, created_at=now))
    session.flush()
    return True
