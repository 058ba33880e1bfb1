"""Plain value objects the service hands to its callers (no ORM sessions attached)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from store.models import Partner, Preregistration


@dataclass(frozen=True)
class PartnerView:
    id: int
    name: str
    country: str
    contact_email: str | None
    contact_mobile: str | None
    notice_channel_id: str | None
    digest_channel_id: str | None
    language: str | None = None
    """Of its channel posts and invitation emails (bot/i18n.py); None: English."""

    @property
    def has_reserved_contact(self) -> bool:
        return bool(self.contact_email or self.contact_mobile)

    @property
    def digest_channel(self) -> str | None:
        """Where the daily digest goes: the digest channel, else the notice channel; None means
        each member gets it as a direct message."""
        return self.digest_channel_id or self.notice_channel_id

    @classmethod
    def from_row(cls, row: Any) -> PartnerView:
        """From a row with the columns of `store.partners.partner_row_for_member`."""
        return cls(*row)

    @classmethod
    def of(cls, p: Partner) -> PartnerView:
        return cls(
            id=p.id,
            name=p.name,
            country=p.country,
            contact_email=p.contact_email,
            contact_mobile=p.contact_mobile,
            notice_channel_id=p.notice_channel_id,
            digest_channel_id=p.digest_channel_id,
            language=p.language,
        )


@dataclass(frozen=True)
class PreregView:
    id: int
    partner_id: int
    partner_name: str
    full_name: str
    email: str
    mobile: str
    send_invitation: bool
    association_type: str
    status: str
    customer_country: str | None
    partner_country: str
    review_reason: str | None
    submitted_by: str
    submitted_at: datetime
    review_due_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    expires_at: datetime | None
    associated_at: datetime | None
    deleted_at: datetime | None
    invited_at: datetime | None
    review_channel_id: str | None
    review_message_ts: str | None
    partner_contact_email: str | None = None
    deleted_by: str | None = None
    """The partner's reserved contact (R1): the Reply-To of the customer's invitation."""
    info_question: str | None = None
    info_asked_by: str | None = None
    info_asked_at: datetime | None = None
    info_due_at: datetime | None = None
    info_answer: str | None = None
    reviewer: str | None = None
    partner_language: str | None = None
    """The partner's language setting (`/preregister language`): its invitation email's."""

    @classmethod
    def of(cls, r: Preregistration, partner: Partner | PartnerView) -> PreregView:
        return cls(
            id=r.id,
            partner_id=r.partner_id,
            partner_name=partner.name,
            full_name=r.full_name,
            email=r.email,
            mobile=r.mobile,
            send_invitation=r.send_invitation,
            association_type=r.association_type,
            status=r.status,
            customer_country=r.customer_country,
            partner_country=partner.country,
            review_reason=r.review_reason,
            submitted_by=r.submitted_by,
            submitted_at=r.submitted_at,
            review_due_at=r.review_due_at,
            decided_at=r.decided_at,
            decided_by=r.decided_by,
            decision_reason=r.decision_reason,
            expires_at=r.expires_at,
            associated_at=r.associated_at,
            deleted_at=r.deleted_at,
            invited_at=r.invited_at,
            review_channel_id=r.review_channel_id,
            review_message_ts=r.review_message_ts,
            partner_contact_email=partner.contact_email,
            deleted_by=r.deleted_by,
            info_question=r.info_question,
            info_asked_by=r.info_asked_by,
            info_asked_at=r.info_asked_at,
            info_due_at=r.info_due_at,
            info_answer=r.info_answer,
            reviewer=r.reviewer,
            partner_language=partner.language,
        )

    @classmethod
    def new(cls, row_id: int, values: Mapping[str, Any], partner: PartnerView) -> PreregView:
        """The row just inserted with `values` (the columns given; every other one is None)."""
        return cls(
            id=row_id,
            partner_id=partner.id,
            partner_name=partner.name,
            full_name=values["full_name"],
            email=values["email"],
            mobile=values["mobile"],
            send_invitation=values["send_invitation"],
            association_type=values["association_type"],
            status=values["status"],
            customer_country=values["customer_country"],
            partner_country=partner.country,
            review_reason=values["review_reason"],
            submitted_by=values["submitted_by"],
            submitted_at=values["submitted_at"],
            review_due_at=values["review_due_at"],
            decided_at=None,
            decided_by=None,
            decision_reason=None,
            expires_at=values["expires_at"],
            associated_at=None,
            deleted_at=None,
            invited_at=None,
            review_channel_id=None,
            review_message_ts=None,
            partner_contact_email=partner.contact_email,
            partner_language=partner.language,
        )


@dataclass(frozen=True)
class PreregistrationForm:
    """What the partner typed into the modal (R7). Association type is always Reseller."""

    full_name: str
    email: str
    mobile: str
    send_invitation: bool


@dataclass(frozen=True)
class Outcome:
    """Result of a preregistration request. `created` is False when a retry found the
    request already handled (same request key)."""

    preregistration: PreregView
    created: bool


@dataclass(frozen=True)
class Eligibility:
    allowed: bool
    code: str | None = None
    message: str | None = None
    needs_review: bool = False
    customer_country: str | None = None
    partner_country: str | None = None


@dataclass(frozen=True)
class DeleteResult:
    email: str
    deleted: bool
    message: str
    preregistration_id: int | None = None


@dataclass(frozen=True)
class PartnerSummary:
    partner: PartnerView
    quota_used: int
    quota_limit: int
    counts: dict[str, int]
    expiring_soon: list[PreregView] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    items: list[PreregView]
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total

    @property
    def has_previous(self) -> bool:
        return self.offset > 0
