"""Workspaces that install the app (distributed mode) and the partners they are linked to.

An installation is recorded when Slack's OAuth flow completes, marked revoked when Slack says
the app was uninstalled or its tokens revoked, and installed again by a reinstall, keeping its
link. A linked workspace's people preregister for its partner: those its admins pick (partner
members keyed `ORG:USER`, bot/identity.py), or everyone in it if the admins choose so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import notices
from bot.admin import partner_fields
from bot.clock import Clock
from bot.errors import InvalidInput, NotFound, Refused
from bot.i18n import N_, _
from bot.identity import org_of, parse_member, same_org_key
from bot.validation import has_control_chars
from store import audit, deliveries
from store import partners as partner_store
from store import workspaces as workspace_store
from store.db import Database
from store.models import LinkRequest, Workspace

MAX_PICKED = 100
LINK_OUTCOMES = {"approved": N_("approved"), "rejected": N_("rejected")}
"""People an admin picks at once on App Home (the multi-user select's limit)."""
MAX_PARTNER_CHOICES = 100
"""Existing partners a manager can link a request to (a static select's limit)."""


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


@dataclass(frozen=True)
class LinkRequestView:
    id: int
    workspace_id: int
    workspace_name: str
    org_id: str
    requested_by: str
    company_name: str
    country: str
    contact_email: str | None
    contact_mobile: str | None
    status: str
    partner_id: int | None
    partner_name: str | None
    decided_by: str | None
    decided_at: datetime | None
    review_channel_id: str | None
    review_message_ts: str | None
    created_at: datetime

    @classmethod
    def of(
        cls, row: LinkRequest, workspace: Workspace, partner_name: str | None
    ) -> LinkRequestView:
        return cls(
            id=row.id,
            workspace_id=row.workspace_id,
            workspace_name=workspace.name or workspace.org_id,
            org_id=workspace.org_id,
            requested_by=row.requested_by,
            company_name=row.company_name,
            country=row.country,
            contact_email=row.contact_email,
            contact_mobile=row.contact_mobile,
            status=row.status,
            partner_id=row.partner_id,
            partner_name=partner_name,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            review_channel_id=row.review_channel_id,
            review_message_ts=row.review_message_ts,
            created_at=row.created_at,
        )


@dataclass(frozen=True)
class Onboarding:
    """What App Home shows about the viewer's own workspace (distributed mode)."""

    workspace: WorkspaceView
    is_admin: bool
    admins: list[str]
    pending: LinkRequestView | None
    picked: list[str]
    """Keys (`ORG:USER`) of the people of this workspace picked to preregister."""


@dataclass(frozen=True)
class PolicySaved:
    everyone: bool
    added: list[str]
    removed: list[str]


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

    # --- onboarding in Slack (issue 14) -----------------------------------------------------

    def onboarding(self, viewer: str) -> Onboarding | None:
        """The viewer's installed workspace and what its admins may do there; None for the
        vendor's own workspace or one that has not installed the app."""
        org = org_of(viewer)
        if org is None:
            return None
        with self.db.session() as s:
            row = _installed_of(s, org)
            if row is None:
                return None
            admins = _admins(s, row)
            pending = workspace_store.pending_link_request(s, row.id)
            picked = (
                workspace_store.org_members(s, row.partner_id, org)
                if row.partner_id is not None
                else []
            )
            partner = partner_store.partner_by_id(s, row.partner_id) if row.partner_id else None
            return Onboarding(
                workspace=WorkspaceView.of(row, partner.name if partner else None),
                is_admin=viewer in admins,
                admins=sorted(admins),
                pending=None if pending is None else LinkRequestView.of(pending, row, None),
                picked=picked,
            )

    def request_link(
        self,
        requester: str,
        company_name: str,
        country: str,
        contact_email: str | None,
        contact_mobile: str | None,
    ) -> LinkRequestView:
        """An admin of an unlinked workspace asks to link it to their company (R1: a reserved
        contact email or mobile is required). One pending request per workspace."""
        errors: dict[str, str] = {}
        name, code, email, mobile = partner_fields(
            errors, company_name, country, contact_email or None, contact_mobile or None
        )
        if name and has_control_chars(name):
            errors["name"] = _("The company name contains control or invisible characters.")
        if not contact_email and not contact_mobile:
            errors["contact_email"] = _("Give a reserved contact email or mobile number (or both).")
        if errors:
            raise InvalidInput(errors)
        now = self.clock.now()
        with self.db.session() as s:
            row = self._admin_workspace(s, requester, "request_link")
            if row.partner_id is not None:
                raise Refused("already_linked", _("This workspace is already linked to a partner."))
            workspace_store.lock_workspace(s, row.id)
            if workspace_store.pending_link_request(s, row.id) is not None:
                raise Refused(
                    "link_pending",
                    _(
                        "A request to link this workspace is already waiting for an ecosystem "
                        "manager. You'll get a DM when it is decided."
                    ),
                )
            request = workspace_store.add_link_request(
                s,
                workspace_id=row.id,
                requested_by=requester,
                company_name=name,
                country=code,
                contact_email=email,
                contact_mobile=mobile,
                created_at=now,
            )
            deliveries.enqueue(
                s,
                kind=notices.LINK_REQUEST,
                dedupe_key=f"{notices.LINK_REQUEST}:{request.id}",
                payload={"link_request_id": request.id},
                now=now,
            )
            audit.record(
                s,
                at=now,
                actor=requester,
                action="link_request",
                result="pending",
                detail={"org": row.org_id, "workspace": row.id, "request": request.id},
            )
            return LinkRequestView.of(request, row, None)

    def link_request(self, request_id: int) -> LinkRequestView | None:
        with self.db.session() as s:
            return _request_view(s, request_id)

    def link_request_unposted(self, request_id: int) -> bool:
        """Whether the request's post to the manager channel is still to be delivered."""
        with self.db.session() as s:
            row = deliveries.by_key(s, f"{notices.LINK_REQUEST}:{request_id}")
            return row is not None and row.status == "pending"

    def set_link_message(self, request_id: int, channel_id: str, ts: str) -> None:
        with self.db.session() as s:
            workspace_store.set_link_message(s, request_id, channel_id, ts)

    def partner_choices(self, limit: int = MAX_PARTNER_CHOICES) -> list[tuple[int, str]]:
        with self.db.session() as s:
            return [(p.id, p.name) for p in partner_store.all_partners(s)[:limit]]

    def ensure_manager(self, user: str, action: str, request_id: int | None = None) -> None:
        with self.db.session() as s:
            if partner_store.is_manager(s, user):
                return
        self._audit_refusal(user, action, request_id)
        raise _not_a_manager()

    def decide_link(
        self,
        manager: str,
        request_id: int,
        *,
        approve: bool,
        partner_id: int | None = None,
        reason: str | None = None,
    ) -> LinkRequestView:
        """Approve (a new partner from the request, or the existing `partner_id`) or reject.
        The conditional update on status='pending' is the decision: of two managers, one wins."""
        reason = " ".join((reason or "").split()) or None
        if reason is not None and (has_control_chars(reason) or len(reason) > 500):
            raise InvalidInput(
                {"reason": _("Keep the reason to 500 plain characters, no control characters.")}
            )
        action = "link_approve" if approve else "link_reject"
        now = self.clock.now()
        try:
            with self.db.session() as s:
                if not partner_store.is_manager(s, manager):
                    raise _not_a_manager()
                decided = workspace_store.decide_link_request(
                    s,
                    request_id,
                    status="approved" if approve else "rejected",
                    decided_by=manager,
                    decided_at=now,
                )
                request = workspace_store.link_request(s, request_id)
                if request is None:
                    raise NotFound(_("That link request no longer exists."))
                if not decided:
                    raise Refused(
                        "already_decided",
                        _("This link request was already decided: {outcome}.").format(
                            outcome=_(LINK_OUTCOMES.get(request.status, request.status))
                        ),
                    )
                if approve:
                    partner = self._partner_for(s, request, partner_id, now)
                    request.partner_id = partner
                    workspace_store.link(s, request.workspace_id, partner)
                deliveries.enqueue(
                    s,
                    kind=notices.LINK_DECIDED,
                    dedupe_key=f"{notices.LINK_DECIDED}:{request.id}",
                    payload={"link_request_id": request.id, "reason": reason},
                    now=now,
                )
                audit.record(
                    s,
                    at=now,
                    actor=manager,
                    action=action,
                    result=request.status,
                    partner_id=request.partner_id,
                    detail={"request": request.id, "workspace": request.workspace_id}
                    | ({"reason": reason} if reason else {}),
                )
                s.flush()
                view = _request_view(s, request.id)
                assert view is not None
                return view
        except (Refused, NotFound) as refused:
            self._audit_refusal(manager, action, request_id, getattr(refused, "code", "gone"))
            raise
        except IntegrityError:
            raise Refused(
                "partner_exists",
                _(
                    "A partner with this name was added meanwhile. Pick it under "
                    '"or link to an existing partner".'
                ),
            ) from None

    def _partner_for(
        self, s: Session, request: LinkRequest, partner_id: int | None, now: datetime
    ) -> int:
        """The picked existing partner, or a new one made from the request (no members: the
        workspace's admins pick them)."""
        if partner_id is not None:
            if partner_store.partner_by_id(s, partner_id) is None:
                raise NotFound(_("The partner picked to link to no longer exists. Pick another."))
            return partner_id
        if partner_store.partner_by_name(s, request.company_name) is not None:
            raise Refused(
                "partner_exists",
                _(
                    'A partner named "{name}" already exists. Pick it under "or link to an '
                    'existing partner", or reject the request.'
                ).format(name=request.company_name),
            )
        partner = partner_store.add_partner(
            s,
            name=request.company_name,
            country=request.country,
            contact_email=request.contact_email,
            contact_mobile=request.contact_mobile,
            now=now,
        )
        audit.record(
            s,
            at=now,
            actor=request.decided_by or "manager",
            action="partner_add",
            result="created",
            partner_id=partner.id,
            detail={"name": partner.name, "link_request": request.id},
        )
        return partner.id

    def set_policy(self, admin: str, everyone: bool, picked: list[str]) -> PolicySaved:
        """Who of the admin's workspace may preregister: everyone, or the picked Slack user ids
        (of that workspace: keys `ORG:USER`). Members of other workspaces are never touched."""
        org = org_of(admin)
        if len(picked) > MAX_PICKED:
            raise InvalidInput(
                {"picked": _("Pick at most {n} people at once.").format(n=MAX_PICKED)}
            )
        keys = list(
            dict.fromkeys(parse_member(same_org_key(admin, u), None, "picked") for u in picked)
        )
        now = self.clock.now()
        with self.db.session() as s:
            row = self._admin_workspace(s, admin, "set_policy")
            if row.partner_id is None or org is None:
                raise Refused(
                    "workspace_not_linked",
                    _("This workspace is not linked to a partner yet. Ask for the link first."),
                )
            current = set(workspace_store.org_members(s, row.partner_id, org))
            added = [k for k in keys if k not in current]
            removed = sorted(current - set(keys))
            for key in added:
                elsewhere = partner_store.member_partner_id(s, key)
                if elsewhere is not None and elsewhere != row.partner_id:
                    raise InvalidInput(
                        {
                            "picked": _(
                                "{user} already preregisters for another partner. Ask your "
                                "ecosystem manager to move them."
                            ).format(user=key.rpartition(":")[2])
                        }
                    )
            workspace_store.remove_members(s, row.partner_id, removed)
            for key in added:
                partner_store.add_member(s, row.partner_id, key, now)
            workspace_store.set_everyone(s, row.id, everyone)
            audit.record(
                s,
                at=now,
                actor=admin,
                action="workspace_policy",
                result="everyone" if everyone else "picked",
                partner_id=row.partner_id,
                detail={"workspace": row.id, "added": added, "removed": removed},
            )
            return PolicySaved(everyone, added, removed)

    def _admin_workspace(self, s: Session, user: str, action: str) -> Workspace:
        """The user's installed workspace, if they are one of its admins, else Refused."""
        org = org_of(user)
        row = _installed_of(s, org) if org is not None else None
        if row is None or user not in _admins(s, row):
            refused = Refused(
                "not_workspace_admin",
                _(
                    "Only the person who installed prereg-bot in this workspace (or who had it "
                    "linked) can do this. Ask them."
                ),
            )
            self._audit_refusal(user, action, None, refused.code)
            raise refused
        return row

    def _audit_refusal(
        self, actor: str, action: str, request_id: int | None, code: str = "not_a_manager"
    ) -> None:
        with self.db.session() as s:
            audit.record(
                s,
                at=self.clock.now(),
                actor=actor,
                action=action,
                result=f"refused:{code}",
                detail={"request": request_id},
            )


def _not_a_manager() -> Refused:
    return Refused(
        "not_a_manager",
        _("Only ecosystem managers can approve or reject link requests. Ask one of them."),
    )


def _installed_of(s: Session, org: str) -> Workspace | None:
    rows = [r for r in workspace_store.rows_for_org(s, org) if r.status == "installed"]
    return workspace_store.by_id(s, rows[0].id) if rows else None


def _admins(s: Session, row: Workspace) -> set[str]:
    """Who may link the workspace and pick its people: its installer and approved requesters."""
    admins = workspace_store.approved_requesters(s, row.id)
    if row.installed_by:
        admins.add(row.installed_by)
    return admins


def _request_view(s: Session, request_id: int) -> LinkRequestView | None:
    row = workspace_store.link_request(s, request_id)
    if row is None:
        return None
    workspace = workspace_store.by_id(s, row.workspace_id)
    assert workspace is not None
    partner = partner_store.partner_by_id(s, row.partner_id) if row.partner_id else None
    return LinkRequestView.of(row, workspace, partner.name if partner else None)


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
