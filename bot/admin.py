"""Operator use cases behind the admin CLI: partners, members, managers, exports."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.errors import InvalidInput
from bot.identity import parse_member
from bot.service import PreregistrationService
from bot.validation import clean_country, clean_email, clean_mobile, normalise_email
from store import audit
from store import partners as partner_store
from store import preregistrations as prereg_store
from store.db import Database
from store.models import Partner


@dataclass(frozen=True)
class PartnerRow:
    id: int
    name: str
    country: str
    contact_email: str | None
    contact_mobile: str | None
    members: list[str]
    live: int
    active: bool = True


@dataclass(frozen=True)
class PartnerDetail:
    partner: PartnerRow
    notice_channel_id: str | None
    digest_channel_id: str | None
    counts: dict[str, int]
    """Preregistrations per status."""


@dataclass(frozen=True)
class ManagerRow:
    slack_user_id: str
    email: str | None
    created_at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    action: str
    result: str


@dataclass(frozen=True)
class PreregDetail:
    """One preregistration as the operator sees it: the export's columns and its audit trail."""

    id: int
    partner: str
    full_name: str
    email: str
    mobile: str
    status: str
    customer_country: str | None
    submitted_by: str
    submitted_at: datetime
    expires_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    associated_at: datetime | None
    expired_at: datetime | None
    deleted_at: datetime | None
    history: list[HistoryEntry]


class Admin:
    def __init__(self, db: Database, clock: Clock, home: str | None = None) -> None:
        self.db = db
        self.clock = clock
        self.home = home
        """The vendor's team or org id: a bare user id is a member of it (bot/identity.py)."""

    def _member_key(self, raw: str) -> str:
        return parse_member(raw, self.home)

    def add_partner(
        self,
        name: str,
        country: str,
        members: Sequence[str],
        contact_email: str | None = None,
        contact_mobile: str | None = None,
    ) -> int:
        errors: dict[str, str] = {}
        clean_name, country_code, email, mobile = partner_fields(
            errors, name, country, contact_email, contact_mobile
        )
        if not members:
            errors["member"] = "Give at least one --member SLACK_USER_ID."
        member_ids = [_collect(errors, self._member_key, m) for m in members]
        if errors:
            raise InvalidInput(errors)
        now = self.clock.now()
        try:
            with self.db.session() as s:
                if partner_store.partner_by_name(s, clean_name) is not None:
                    raise InvalidInput({"name": f"A partner named {clean_name!r} already exists."})
                for member in member_ids:
                    if partner_store.member_partner_id(s, member) is not None:
                        raise InvalidInput(
                            {"member": f"{member} is already a member of a partner."}
                        )
                partner = partner_store.add_partner(
                    s,
                    name=clean_name,
                    country=country_code,
                    contact_email=email,
                    contact_mobile=mobile,
                    now=now,
                )
                for member in dict.fromkeys(member_ids):
                    partner_store.add_member(s, partner.id, member, now)
                audit.record(
                    s,
                    at=now,
                    actor="operator",
                    action="partner_add",
                    result="created",
                    partner_id=partner.id,
                    detail={"name": clean_name, "members": member_ids},
                )
                return partner.id
        except IntegrityError:
            raise InvalidInput(
                {"name": "The partner or a member was added meanwhile; retry."}
            ) from None

    def add_manager(self, slack_user_id: str, email: str | None = None) -> bool:
        user = parse_member(slack_user_id, self.home, field="manager")
        contact = clean_email(email, field="email") if email else None
        with self.db.session() as s:
            created = partner_store.add_manager(s, user, contact, self.clock.now())
            audit.record(
                s,
                at=self.clock.now(),
                actor="operator",
                action="manager_add",
                result="created" if created else "updated",
                detail={"manager": user},
            )
            return created

    def partners(self) -> list[PartnerRow]:
        with self.db.session() as s:
            rows = []
            for p in partner_store.all_partners(s):
                counts = prereg_store.counts_by_status(s, p.id)
                live = counts.get("under_review", 0) + counts.get("preregistered", 0)
                rows.append(
                    PartnerRow(
                        p.id,
                        p.name,
                        p.country,
                        p.contact_email,
                        p.contact_mobile,
                        partner_store.member_ids(s, p.id),
                        live,
                        p.active,
                    )
                )
            return rows

    # --- one partner -----------------------------------------------------------------------

    def partner(self, ref: str) -> PartnerDetail:
        with self.db.session() as s:
            p = _find_partner(s, ref)
            return self._detail(s, p)

    def _detail(self, s, p: Partner) -> PartnerDetail:  # type: ignore[no-untyped-def]
        counts = prereg_store.counts_by_status(s, p.id)
        live = counts.get("under_review", 0) + counts.get("preregistered", 0)
        row = PartnerRow(
            p.id,
            p.name,
            p.country,
            p.contact_email,
            p.contact_mobile,
            partner_store.member_ids(s, p.id),
            live,
            p.active,
        )
        return PartnerDetail(row, p.notice_channel_id, p.digest_channel_id, counts)

    def edit_partner(
        self,
        ref: str,
        *,
        name: str | None = None,
        country: str | None = None,
        contact_email: str | None = None,
        contact_mobile: str | None = None,
    ) -> PartnerDetail:
        """Changes the given fields; an empty contact clears it. All checked before any write."""
        if name is None and country is None and contact_email is None and contact_mobile is None:
            raise InvalidInput(
                {
                    "partner": "Nothing to change: give --name, --country, --contact-email "
                    "or --contact-mobile."
                }
            )
        now = self.clock.now()
        with self.db.session() as s:
            p = _find_partner(s, ref)
            values = self._edits(s, p, name, country, contact_email, contact_mobile)
            partner_store.update_partner(s, p.id, **values)
            audit.record(
                s,
                at=now,
                actor="operator",
                action="partner_edit",
                result="updated",
                partner_id=p.id,
                detail={"fields": sorted(values)},
            )
            s.refresh(p)
            return self._detail(s, p)

    def _edits(
        self,
        s,  # type: ignore[no-untyped-def]
        p: Partner,
        name: str | None,
        country: str | None,
        contact_email: str | None,
        contact_mobile: str | None,
    ) -> dict[str, object]:
        errors: dict[str, str] = {}
        values: dict[str, object] = {}
        if name is not None:
            values["name"] = _collect(errors, _clean_partner_name, name)
            other = partner_store.partner_by_name(s, values["name"]) if values["name"] else None
            if other is not None and other.id != p.id:
                errors["name"] = f"A partner named {values['name']!r} already exists."
        if country is not None:
            values["country"] = _collect(errors, clean_country, country)
        region = values.get("country") or p.country
        if contact_email is not None:
            values["contact_email"] = (
                _collect(errors, clean_email, contact_email, field="contact_email")
                if contact_email.strip()
                else None
            )
        if contact_mobile is not None:
            values["contact_mobile"] = (
                _collect(errors, clean_mobile, contact_mobile, region, field="contact_mobile")
                if contact_mobile.strip()
                else None
            )
        if errors:
            raise InvalidInput(errors)
        return values

    def add_members(self, ref: str, members: Sequence[str]) -> list[str]:
        """Adds the members (all or none); returns those that were not members already."""
        keys = self._member_keys(members)
        now = self.clock.now()
        with self.db.session() as s:
            p = _find_partner(s, ref)
            added = []
            for key in keys:
                owner = partner_store.member_partner_id(s, key)
                if owner == p.id:
                    continue
                if owner is not None:
                    raise InvalidInput({"member": f"{key} is already a member of another partner."})
                partner_store.add_member(s, p.id, key, now)
                added.append(key)
            self._audit_members(s, p.id, "member_add", added, now)
            return added

    def remove_members(self, ref: str, members: Sequence[str]) -> list[str]:
        """Removes the members (all or none: each must be a member of this partner)."""
        keys = self._member_keys(members)
        now = self.clock.now()
        with self.db.session() as s:
            p = _find_partner(s, ref)
            current = set(partner_store.member_ids(s, p.id))
            missing = [k for k in keys if k not in current]
            if missing:
                names = ", ".join(missing)
                raise InvalidInput(
                    {"member": f"{names}: not a member of {p.name!r}; nothing removed."}
                )
            for key in keys:
                partner_store.remove_member(s, key)
            self._audit_members(s, p.id, "member_remove", keys, now)
            return keys

    def _member_keys(self, members: Sequence[str]) -> list[str]:
        if not members:
            raise InvalidInput({"member": "Give at least one member, e.g. U0123ABCD."})
        errors: dict[str, str] = {}
        keys = [_collect(errors, self._member_key, m) for m in members]
        if errors:
            raise InvalidInput(errors)
        return list(dict.fromkeys(keys))

    @staticmethod
    def _audit_members(s, partner_id: int, action: str, keys: list[str], now: datetime) -> None:  # type: ignore[no-untyped-def]
        audit.record(
            s,
            at=now,
            actor="operator",
            action=action,
            result="updated" if keys else "unchanged",
            partner_id=partner_id,
            detail={"members": keys},
        )

    def deactivate_partner(self, ref: str) -> tuple[str, int]:
        """Returns the partner's name and how many live preregistrations expired."""
        with self.db.session() as s:
            p = _find_partner(s, ref)
            partner_id, name = p.id, p.name
        expired = PreregistrationService(self.db, self.clock).deactivate_partner(partner_id)
        return name, len(expired)

    # --- managers --------------------------------------------------------------------------

    def managers(self) -> list[ManagerRow]:
        with self.db.session() as s:
            return [
                ManagerRow(m.slack_user_id, m.email, m.created_at)
                for m in partner_store.managers(s)
            ]

    def remove_manager(self, slack_user_id: str) -> str:
        user = parse_member(slack_user_id, self.home, field="manager")
        with self.db.session() as s:
            if not partner_store.remove_manager(s, user):
                raise InvalidInput({"manager": f"{user} is not a registered manager."})
            audit.record(
                s,
                at=self.clock.now(),
                actor="operator",
                action="manager_remove",
                result="removed",
                detail={"manager": user},
            )
            return user

    # --- preregistrations ------------------------------------------------------------------

    def preregistrations(self, ref: str) -> list[PreregDetail]:
        """By id, or every preregistration of a customer email (oldest first)."""
        text = ref.strip()
        with self.db.session() as s:
            if text.isdigit():
                found = prereg_store.get(s, int(text))
                rows = [found] if found is not None else []
            else:
                rows = prereg_store.for_email(s, normalise_email(text))
            if not rows:
                what = "id" if text.isdigit() else "email"
                raise InvalidInput(
                    {"preregistration": f"No preregistration with that {what}: {text!r}."}
                )
            names = {p.id: p.name for p in partner_store.all_partners(s)}
            return [_prereg_detail(r, names.get(r.partner_id, ""), s) for r in rows]

    def export_customers(self, out: IO[str], partner_name: str | None = None) -> int:
        with self.db.session() as s:
            partner_id = None
            if partner_name:
                partner = partner_store.partner_by_name(s, partner_name)
                if partner is None:
                    raise InvalidInput({"partner": f"No partner named {partner_name!r}."})
                partner_id = partner.id
            names = {p.id: p.name for p in partner_store.all_partners(s)}
            writer = csv.writer(out)
            writer.writerow(EXPORT_HEADER)
            rows = prereg_store.all_rows(s, partner_id)
            for r in rows:
                cells = [
                    r.id,
                    names.get(r.partner_id, ""),
                    r.full_name,
                    r.email,
                    r.mobile,
                    r.association_type,
                    r.status,
                    r.customer_country or "",
                    r.submitted_by,
                    _iso(r.submitted_at),
                    _iso(r.expires_at),
                    _iso(r.decided_at),
                    r.decided_by or "",
                    r.decision_reason or "",
                    _iso(r.associated_at),
                    _iso(r.deleted_at),
                    r.info_question or "",
                    _iso(r.info_asked_at),
                    r.info_asked_by or "",
                    r.info_answer or "",
                    r.reviewer or "",
                ]
                writer.writerow([_csv_safe(c) if isinstance(c, str) else c for c in cells])
            audit.record(  # who saw which customers' contact details (docs/privacy.md)
                s,
                at=self.clock.now(),
                actor="operator:cli",
                action="export_customers",
                result="exported",
                partner_id=partner_id,
                detail={"ids": [r.id for r in rows]},
            )
            return len(rows)


EXPORT_HEADER = (
    "id",
    "partner",
    "full_name",
    "email",
    "mobile",
    "association_type",
    "status",
    "customer_country",
    "submitted_by",
    "submitted_at",
    "expires_at",
    "decided_at",
    "decided_by",
    "decision_reason",
    "associated_at",
    "deleted_at",
    "info_question",
    "info_asked_at",
    "info_asked_by",
    "info_answer",
    "reviewer",
)


def _find_partner(s, ref: str) -> Partner:  # type: ignore[no-untyped-def]
    """By name (as `partner list` shows it), else by id."""
    text = " ".join(ref.split())
    partner = partner_store.partner_by_name(s, text)
    if partner is None and text.isdigit():
        partner = partner_store.partner_by_id(s, int(text))
    if partner is None:
        raise InvalidInput(
            {"partner": f"No partner named {text!r} (see `prereg-bot partner list`)."}
        )
    return partner


def _clean_partner_name(name: str) -> str:
    clean = " ".join(name.split())
    if not clean:
        raise InvalidInput({"name": "The partner name is empty."})
    if len(clean) > 200:
        raise InvalidInput({"name": "The partner name is too long (at most 200 characters)."})
    return clean


def _prereg_detail(r, partner_name: str, s) -> PreregDetail:  # type: ignore[no-untyped-def]
    history = [HistoryEntry(e.at, e.actor, e.action, e.result) for e in audit.events_for(s, r.id)]
    return PreregDetail(
        r.id,
        partner_name,
        r.full_name,
        r.email,
        r.mobile,
        r.status,
        r.customer_country,
        r.submitted_by,
        r.submitted_at,
        r.expires_at,
        r.decided_at,
        r.decided_by,
        r.decision_reason,
        r.associated_at,
        r.expired_at,
        r.deleted_at,
        history,
    )


def _iso(value) -> str:  # type: ignore[no-untyped-def]
    return value.isoformat() if value is not None else ""


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: str) -> str:
    """Keep spreadsheet programs from reading a text cell as a formula or a number (OWASP's
    CSV injection advice: a leading `'` on any cell that starts with one of FORMULA_STARTS)."""
    return "'" + value if value[:1] in FORMULA_STARTS else value


def partner_fields(
    errors: dict[str, str],
    name: str,
    country: str,
    contact_email: str | None,
    contact_mobile: str | None,
) -> tuple[str, str, str | None, str | None]:
    """A partner's name, business country and reserved contacts, cleaned; what is wrong goes
    into `errors` (keys name, country, contact_email, contact_mobile)."""
    clean_name = " ".join(name.split())
    if not clean_name:
        errors["name"] = "The partner name is empty."
    elif len(clean_name) > 200:
        errors["name"] = "The partner name is too long (at most 200 characters)."
    country_code = _collect(errors, clean_country, country)
    email = (
        _collect(errors, clean_email, contact_email, field="contact_email")
        if contact_email
        else None
    )
    mobile = (
        _collect(errors, clean_mobile, contact_mobile, country_code, field="contact_mobile")
        if contact_mobile
        else None
    )
    return clean_name, country_code, email, mobile


def _collect(errors: dict[str, str], clean, *args, field: str | None = None):  # type: ignore[no-untyped-def]
    try:
        return clean(*args, field=field) if field else clean(*args)
    except InvalidInput as exc:
        errors.update(exc.errors)
        return None
