"""Workspaces that install the app (distributed mode) and the partners they are linked to.

An installation is recorded when Slack's OAuth flow completes, marked revoked when Slack says
the app was uninstalled or its tokens revoked, and installed again by a reinstall, keeping its
link. A linked workspace's people preregister for its partner: those its admins pick (partner
members keyed `ORG:USER`, bot/identity.py), or everyone in it if the admins choose so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.errors import InvalidInput
from store import audit
from store import partners as partner_store
from store import workspaces as workspace_store
from store.db import Database
from store.models import Workspace


@dataclass(frozen=True)
class WorkspaceView:
    id: int
    org_id: str
    enterprise_id: str | None
    team_id: str | None
    name: str | None
    is_enterprise_install: bool
    partner_id: int | None
    partner_name: str | None
    everyone_may_preregister: bool
    installed_by: str | None
    status: str
    installed_at: datetime
    revoked_at: datetime | None

    @property
    def installed(self) -> bool:
        return self.status == "installed"

    @classmethod
    def of(cls, row: Workspace, partner_name: str | None = None) -> WorkspaceView:
        return cls(
            id=row.id,
            org_id=row.org_id,
            enterprise_id=row.enterprise_id,
            team_id=row.team_id,
            name=row.name,
            is_enterprise_install=row.is_enterprise_install,
            partner_id=row.partner_id,
            partner_name=partner_name,
            everyone_may_preregister=row.everyone_may_preregister,
            installed_by=row.installed_by,
            status=row.status,
            installed_at=row.installed_at,
            revoked_at=row.revoked_at,
        )


class Workspaces:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def record_install(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        name: str | None,
        is_enterprise_install: bool,
        installed_by: str | None,
    ) -> WorkspaceView:
        with self.db.session() as s:
            row = workspace_store.save_install(
                s,
                enterprise_id=enterprise_id,
                team_id=None if is_enterprise_install else team_id,
                name=name,
                is_enterprise_install=is_enterprise_install,
                installed_by=installed_by,
                now=self.clock.now(),
            )
            audit.record(
                s,
                at=self.clock.now(),
                actor=installed_by or "slack",
                action="workspace_install",
                result="installed",
                partner_id=row.partner_id,
                detail={"org": row.org_id, "workspace": row.id},
            )
            return WorkspaceView.of(row)

    def record_revoked(self, enterprise_id: str | None, team_id: str | None) -> bool:
        """True if an installed workspace is now marked revoked."""
        with self.db.session() as s:
            row = workspace_store.by_install(s, enterprise_id, team_id)
            if row is None:
                row = workspace_store.by_install(s, enterprise_id, None)
            if row is None or row.status == "revoked":
                return False
            workspace_store.revoke(s, row.enterprise_id, row.team_id, self.clock.now())
            audit.record(
                s,
                at=self.clock.now(),
                actor="slack",
                action="workspace_revoked",
                result="revoked",
                partner_id=row.partner_id,
                detail={"org": row.org_id, "workspace": row.id},
            )
            return True

    def link(
        self, team_or_org_id: str, partner_name: str, actor: str = "operator"
    ) -> WorkspaceView:
        """Links an installed workspace (its team id, or an org id for an org-wide install)."""
        with self.db.session() as s:
            row = _find(s, team_or_org_id)
            partner = partner_store.partner_by_name(s, partner_name)
            if partner is None:
                raise InvalidInput({"partner": f"There is no partner named {partner_name!r}."})
            workspace_store.link(s, row.id, partner.id)
            audit.record(
                s,
                at=self.clock.now(),
                actor=actor,
                action="workspace_link",
                result="linked",
                partner_id=partner.id,
                detail={"org": row.org_id, "workspace": row.id},
            )
            s.refresh(row)
            return WorkspaceView.of(row, partner.name)

    def listing(self) -> list[WorkspaceView]:
        with self.db.session() as s:
            return [WorkspaceView.of(w, name) for w, name in workspace_store.all_workspaces(s)]

    def of_install(self, enterprise_id: str | None, team_id: str | None) -> WorkspaceView | None:
        """The workspace a request came from: its own install, else its org's org-wide one."""
        with self.db.session() as s:
            row = workspace_store.by_install(s, enterprise_id, team_id)
            if row is None and enterprise_id is not None:
                row = workspace_store.by_install(s, enterprise_id, None)
            return None if row is None else WorkspaceView.of(row)

    def of_org(self, org: str) -> WorkspaceView | None:
        """The installed workspace whose users' keys start with `org`, if any."""
        with self.db.session() as s:
            rows = workspace_store.rows_for_org(s, org)
            installed = [r for r in rows if r.status == "installed"]
            row = workspace_store.by_id(s, installed[0].id) if installed else None
            return None if row is None else WorkspaceView.of(row)

    def partner_contact_email(self, partner_id: int) -> str | None:
        with self.db.session() as s:
            partner = partner_store.partner_by_id(s, partner_id)
            return None if partner is None else partner.contact_email

    def of_partner(self, partner_id: int) -> WorkspaceView | None:
        """Where a partner's people are: its linked workspace (installed or revoked), or None
        for a partner whose members are in the vendor's own workspace."""
        with self.db.session() as s:
            row = workspace_store.for_partner(s, partner_id)
            return None if row is None else WorkspaceView.of(row)


def _find(s: Session, team_or_org_id: str) -> Workspace:
    value = team_or_org_id.strip()
    row = workspace_store.by_install(s, None, value)
    if row is None:
        rows = [w for w, _ in workspace_store.all_workspaces(s) if value in (w.team_id, w.org_id)]
        row = rows[0] if rows else None
    if row is None:
        raise InvalidInput(
            {
                "team": f"No workspace {value!r} has installed the app. "
                "`prereg-bot workspaces list` shows those that have."
            }
        )
    return row
