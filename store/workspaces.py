"""Queries on the workspaces that installed the app and the partners they are linked to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, select, update
from sqlalchemy.orm import Session

from store.models import LinkRequest, Partner, PartnerMember, Workspace


def install_key(enterprise_id: str | None, team_id: str | None) -> str:
    return f"{enterprise_id or '-'}:{team_id or '-'}"


def by_install(
    session: Session, enterprise_id: str | None, team_id: str | None
) -> Workspace | None:
    key = install_key(enterprise_id, team_id)
    return session.scalars(select(Workspace).where(Workspace.install_key == key)).first()


def by_id(session: Session, workspace_id: int) -> Workspace | None:
    return session.get(Workspace, workspace_id)


def save_install(
    session: Session,
    *,
    enterprise_id: str | None,
    team_id: str | None,
    name: str | None,
    is_enterprise_install: bool,
    installed_by: str | None,
    now: datetime,
) -> Workspace:
    """Records an install or a reinstall: the row is (again) installed; its link is kept."""
    row = by_install(session, enterprise_id, team_id)
    if row is None:
        row = Workspace(
            install_key=install_key(enterprise_id, team_id),
            org_id=enterprise_id or team_id or "",
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
            everyone_may_preregister=False,
        )
        session.add(row)
    row.name = name or row.name
    row.installed_by = installed_by
    row.status = "installed"
    row.installed_at = now
    row.revoked_at = None
    session.flush()
    return row


def revoke(
    session: Session, enterprise_id: str | None, team_id: str | None, now: datetime
) -> Workspace | None:
    """Marks the installation revoked (an org-wide install is found by its enterprise id)."""
    row = by_install(session, enterprise_id, team_id) or by_install(session, enterprise_id, None)
    if row is not None and row.status != "revoked":
        row.status = "revoked"
        row.revoked_at = now
    return row


def link(session: Session, workspace_id: int, partner_id: int) -> None:
    session.execute(
        update(Workspace).where(Workspace.id == workspace_id).values(partner_id=partner_id)
    )


def set_everyone(session: Session, workspace_id: int, everyone: bool) -> None:
    session.execute(
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(everyone_may_preregister=everyone)
    )


def all_workspaces(session: Session) -> list[tuple[Workspace, str | None]]:
    stmt = (
        select(Workspace, Partner.name)
        .outerjoin(Partner, Partner.id == Workspace.partner_id)
        .order_by(Workspace.installed_at)
    )
    return [(w, name) for w, name in session.execute(stmt)]


def for_partner(session: Session, partner_id: int) -> Workspace | None:
    """The partner's linked workspace, an installed one first."""
    stmt = (
        select(Workspace)
        .where(Workspace.partner_id == partner_id)
        .order_by((Workspace.status == "installed").desc(), Workspace.installed_at.desc())
    )
    return session.scalars(stmt).first()


_ORG = select(
    Workspace.id, Workspace.partner_id, Workspace.status, Workspace.everyone_may_preregister
).where(Workspace.org_id == bindparam("org"))


def rows_for_org(conn: Connection | Session, org: str) -> list[Row[Any]]:
    """The installations whose users' keys start with `org` (bot/identity.py)."""
    return list(conn.execute(_ORG, {"org": org}))


def add_link_request(session: Session, **fields: Any) -> LinkRequest:
    row = LinkRequest(status="pending", **fields)
    session.add(row)
    session.flush()
    return row


def link_request(session: Session, request_id: int, lock: bool = False) -> LinkRequest | None:
    stmt = select(LinkRequest).where(LinkRequest.id == request_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def pending_link_request(session: Session, workspace_id: int) -> LinkRequest | None:
    stmt = select(LinkRequest).where(
        LinkRequest.workspace_id == workspace_id, LinkRequest.status == "pending"
    )
    return session.scalars(stmt).first()


def lock_workspace(session: Session, workspace_id: int) -> None:
    """Serialise writers for one workspace (one pending link request each). An UPDATE takes
    PostgreSQL's row lock and SQLite's write lock alike."""
    session.execute(
        update(Workspace).where(Workspace.id == workspace_id).values(status=Workspace.status)
    )


def decide_link_request(session: Session, request_id: int, **values: Any) -> bool:
    """The conditional update that is the decision: of two deciders, one wins."""
    result = session.execute(
        update(LinkRequest)
        .where(LinkRequest.id == request_id, LinkRequest.status == "pending")
        .values(**values)
        .returning(LinkRequest.id)
    )
    return result.first() is not None


def set_link_message(session: Session, request_id: int, channel_id: str, ts: str) -> None:
    session.execute(
        update(LinkRequest)
        .where(LinkRequest.id == request_id)
        .values(review_channel_id=channel_id, review_message_ts=ts)
    )


def approved_requesters(session: Session, workspace_id: int) -> set[str]:
    stmt = select(LinkRequest.requested_by).where(
        LinkRequest.workspace_id == workspace_id, LinkRequest.status == "approved"
    )
    return set(session.scalars(stmt))


def org_members(session: Session, partner_id: int, org: str) -> list[str]:
    """The partner's named members whose keys are of `org` (`ORG:USER`), and no one else."""
    stmt = select(PartnerMember.slack_user_id).where(
        PartnerMember.partner_id == partner_id,
        PartnerMember.slack_user_id.startswith(f"{org}:", autoescape=True),
    )
    return sorted(session.scalars(stmt))


def remove_members(session: Session, partner_id: int, keys: list[str]) -> None:
    if keys:
        session.execute(
            delete(PartnerMember).where(
                PartnerMember.partner_id == partner_id, PartnerMember.slack_user_id.in_(keys)
            )
        )
