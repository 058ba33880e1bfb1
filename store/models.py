"""ORM models. The schema itself is created by the Alembic migrations in store/migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.db import UTCDateTime

LIVE_STATUSES = ("under_review", "action_required", "preregistered", "associated")
"""Statuses that claim a customer: at most one row per normalised email may hold one."""

QUOTA_STATUSES = ("under_review", "action_required", "preregistered")
"""Statuses that count against a partner's cap (R4)."""

ALL_STATUSES = (
    "under_review",
    "action_required",
    "preregistered",
    "associated",
    "rejected",
    "expired",
    "deleted",
)

_LIVE_SQL = "status IN ('under_review', 'action_required', 'preregistered', 'associated')"
_ENDED_SQL = "status IN ('deleted', 'expired', 'rejected') AND erased_at IS NULL"


class Base(DeclarativeBase):
    pass


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    country: Mapped[str] = mapped_column(String(2))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_mobile: Mapped[str | None] = mapped_column(String(32))
    notice_channel_id: Mapped[str | None] = mapped_column(String(32))
    digest_channel_id: Mapped[str | None] = mapped_column(String(32))
    lock_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    """False once deactivated (`prereg-bot partner deactivate`): history kept, no new claims."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    language: Mapped[str | None] = mapped_column(String(8))
    """Of the partner's channel posts and invitation emails (bot/i18n.py); None: English."""
    quota_held: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The partner's preregistrations in QUOTA_STATUSES, lapsed claims included. Written only by
    the database's triggers (migration 0010), read by the program overview's sort; R4 counts
    the rows themselves (store/preregistrations.py `count_in_quota`)."""

    members: Mapped[list[PartnerMember]] = relationship(back_populates="partner")

    __table_args__ = (Index("ix_partners_quota", text("quota_held DESC"), "name"),)


class PartnerMember(Base):
    __tablename__ = "partner_members"

    slack_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """A key of bot/identity.py: a bare user id (the vendor's workspace) or ORG:USER."""
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    partner: Mapped[Partner] = relationship(back_populates="members")


class Manager(Base):
    __tablename__ = "managers"

    slack_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Workspace(Base):
    """A Slack workspace (or Enterprise Grid org) that installed the app, and the partner it is
    linked to. The tokens themselves live in slack-sdk's installation store tables."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    install_key: Mapped[str] = mapped_column(String(80), unique=True)
    """`enterprise_id or -` : `team_id or -`, one row per installation target."""
    org_id: Mapped[str] = mapped_column(String(32), index=True)
    """The prefix of its users' keys (bot/identity.py): the org id in a Grid, else the team id."""
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, default=False)
    partner_id: Mapped[int | None] = mapped_column(
        ForeignKey("partners.id", ondelete="SET NULL"), index=True
    )
    everyone_may_preregister: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    installed_by: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="installed")
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LinkRequest(Base):
    """A workspace's request, made in Slack, to be linked to a partner (reviewed by managers)."""

    __tablename__ = "link_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    requested_by: Mapped[str] = mapped_column(String(64))
    company_name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_mobile: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_channel_id: Mapped[str | None] = mapped_column(String(32))
    review_message_ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChannelLanguage(Base):
    """The language of the app's posts in one channel (a channel key, bot/identity.py)."""

    __tablename__ = "channel_languages"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DirectoryAccount(Base):
    """The vendor's known customer accounts: one row per line of the directory CSV."""

    __tablename__ = "directory_accounts"

    email_norm: Mapped[str] = mapped_column(String(254), primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    china_mainland: Mapped[bool] = mapped_column(Boolean, default=False)
    associated_partner: Mapped[str | None] = mapped_column(String(200))
    consumer: Mapped[bool] = mapped_column(Boolean, default=False)
    contract: Mapped[bool] = mapped_column(Boolean, default=False)
    cash_spend: Mapped[bool] = mapped_column(Boolean, default=False)
    direct_sales_preregistered: Mapped[bool] = mapped_column(Boolean, default=False)
    enterprise_master: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Preregistration(Base):
    __tablename__ = "preregistrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    full_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254))
    email_norm: Mapped[str] = mapped_column(String(254))
    mobile: Mapped[str] = mapped_column(String(32))
    send_invitation: Mapped[bool] = mapped_column(Boolean)
    association_type: Mapped[str] = mapped_column(String(20), default="reseller")
    status: Mapped[str] = mapped_column(String(20))
    customer_country: Mapped[str | None] = mapped_column(String(2))
    review_reason: Mapped[str | None] = mapped_column(Text)
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    review_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    associated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_by: Mapped[str | None] = mapped_column(String(64))
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    request_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    review_channel_id: Mapped[str | None] = mapped_column(String(32))
    review_message_ts: Mapped[str | None] = mapped_column(String(32))
    invite_failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    invite_last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    email_hash: Mapped[str | None] = mapped_column(String(64))
    """Keyed hash of `email_norm`, kept when the sweep erases the personal data (bot/privacy.py)."""
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    email_domain: Mapped[str | None] = mapped_column(String(254))
    """The part of email_norm after the @, for similar requests at one company (migration 0007)."""
    info_question: Mapped[str | None] = mapped_column(Text)
    """A manager's question when the request was sent back for information (action_required)."""
    info_asked_by: Mapped[str | None] = mapped_column(String(64))
    info_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    info_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    info_answer: Mapped[str | None] = mapped_column(Text)
    reviewer: Mapped[str | None] = mapped_column(String(64))
    """The manager who took the case ("I'll review this"), if any."""
    reviewer_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    partner: Mapped[Partner] = relationship()

    __table_args__ = (
        Index(
            "uq_preregistrations_live_email",
            "email_norm",
            unique=True,
            postgresql_where=text(_LIVE_SQL),
            sqlite_where=text(_LIVE_SQL),
        ),
        Index("ix_preregistrations_partner_status", "partner_id", "status"),
        Index(
            "ix_preregistrations_expiring",
            "expires_at",
            postgresql_where=text("status = 'preregistered'"),
            sqlite_where=text("status = 'preregistered'"),
        ),
        Index(
            "ix_preregistrations_review_due",
            "review_due_at",
            postgresql_where=text("status = 'under_review'"),
            sqlite_where=text("status = 'under_review'"),
        ),
        Index("ix_preregistrations_email_norm", "email_norm"),
        Index("ix_preregistrations_email_hash", "email_hash"),
        Index("ix_preregistrations_email_domain", "email_domain", "submitted_at"),
        Index(
            "ix_preregistrations_retention",
            text("coalesce(deleted_at, expired_at, decided_at)"),
            postgresql_where=text(_ENDED_SQL),
            sqlite_where=text(_ENDED_SQL),
        ),
        Index(
            "ix_preregistrations_review_queue",
            "submitted_at",
            "id",
            postgresql_where=text("status = 'under_review'"),
            sqlite_where=text("status = 'under_review'"),
        ),
        Index(
            "ix_preregistrations_info_due",
            "info_due_at",
            postgresql_where=text("status = 'action_required'"),
            sqlite_where=text("status = 'action_required'"),
        ),
    )


class AuditEvent(Base):
    """Append-only: who did what to which preregistration, when, with what result."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    result: Mapped[str] = mapped_column(String(40))
    preregistration_id: Mapped[int | None] = mapped_column(
        ForeignKey("preregistrations.id"), index=True
    )
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Delivery(Base):
    """Outbox of notices (Slack posts, emails). `dedupe_key` makes each notice exist once;
    the sweep claims due rows with a lease so a crash between claim and send is retried."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    preregistration_id: Mapped[int | None] = mapped_column(
        ForeignKey("preregistrations.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_deliveries_leased",
            "claimed_until",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


class SlackEvent(Base):
    """Slack requests already handled, so a retry (X-Slack-Retry-Num) does nothing twice."""

    __tablename__ = "slack_events"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class InviteAttempt(Base):
    """Addresses compared on one invitation from one client (a keyed digest of its network
    address, never the address itself), for the per-client lock-out (bot/invitations.py)."""

    __tablename__ = "invite_attempts"

    preregistration_id: Mapped[int] = mapped_column(
        ForeignKey("preregistrations.id", ondelete="CASCADE"), primary_key=True
    )
    client: Mapped[str] = mapped_column(String(32), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# slack-sdk's installation and OAuth state tables (migration 0004 creates them), known here so
# that the schema in one place lists every table the app's database holds.
SLACK_INSTALLATIONS = SQLAlchemyInstallationStore.build_installations_table(
    Base.metadata, "slack_installations"
)
SLACK_BOTS = SQLAlchemyInstallationStore.build_bots_table(Base.metadata, "slack_bots")
SLACK_OAUTH_STATES = SQLAlchemyOAuthStateStore.build_oauth_states_table(
    Base.metadata, "slack_oauth_states"
)
