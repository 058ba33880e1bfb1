"""Operator use cases behind the admin CLI: partners, members, managers, exports."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.errors import InvalidInput
from bot.identity import parse_member
from bot.validation import clean_country, clean_email, clean_mobile
from store import audit
from store import partners as partner_store
from store import preregistrations as prereg_store
from store.db import Database


@dataclass(frozen=True)
class PartnerRow:
    id: int
    name: str
    country: str
    contact_email: str | None
    contact_mobile: str | None
    members: list[str]
    live: int


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
                    )
                )
            return rows

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
