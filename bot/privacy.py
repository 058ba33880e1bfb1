"""Personal data of customers (issue 18, docs/privacy.md): retention, erasure on request
("forget"), access requests ("export-person") and the record of who saw contact details.

Personal data here is a customer's name, email and mobile number. Rows stay after erasure,
blanked, for counts; `email_hash`, an HMAC of the normalised email under a key of our own,
still tells that the same person was registered before without holding the address.
Audit entries name preregistrations by id, never by address.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.errors import InvalidInput, Refused
from bot.invitations import derive_key
from bot.validation import email_error, normalise_email
from store import audit
from store import privacy as privacy_store
from store.db import Database
from store.models import Preregistration

ERASED = "[erased]"
OPERATOR = "operator:cli"
LIVE_NOT_ASSOCIATED = ("under_review", "preregistered")
BATCH = 500


def privacy_key(settings: Any) -> bytes:
    """PREREG_PRIVACY_KEY, else a key derived from INVITE_SECRET for this purpose only."""
    if settings.privacy_key:
        return settings.privacy_key.encode()
    return derive_key(settings.invite_secret or "", "retention-email")


def email_hash(key: bytes, email: str) -> str:
    return hmac.new(key, normalise_email(email).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Forgotten:
    rows: int
    deliveries: int
    audit_events: int


class Privacy:
    def __init__(self, db: Database, clock: Clock, key: bytes, retention_days: int = 365) -> None:
        self.db = db
        self.clock = clock
        self.key = key
        self.retention = timedelta(days=retention_days)

    @classmethod
    def from_settings(cls, db: Database, clock: Clock, settings: Any) -> Privacy:
        return cls(db, clock, privacy_key(settings), settings.retention_days)

    # --- retention -------------------------------------------------------------------------

    def erase_expired(self, now: datetime | None = None) -> int:
        """Erases preregistrations that ended (deleted, expired, rejected) more than the
        retention period ago. Returns how many."""
        now = now or self.clock.now()
        erased = 0
        while True:
            with self.db.session() as s:
                ids = privacy_store.ended_before_ids(s, now - self.retention, BATCH)
                for pid in ids:
                    row = s.get(Preregistration, pid)
                    if row is not None:
                        self._erase(s, row, now)
                if ids:
                    audit.record(
                        s,
                        at=now,
                        actor="system",
                        action="retention_erase",
                        result="erased",
                        detail={"ids": ids},
                    )
            erased += len(ids)
            if len(ids) < BATCH:
                return erased

    def _erase(self, s: Any, row: Preregistration, now: datetime) -> tuple[int, int]:
        """Blanks one row and every trace of its person in its notices and audit entries."""
        needles = [n for n in {row.email, row.email_norm, row.full_name, row.mobile} if n]
        hashed = row.email_hash or email_hash(self.key, row.email_norm)
        changed_deliveries = 0
        for d in privacy_store.deliveries_for(s, [row.id]):
            payload, result = _scrub(d.payload, needles), _scrub(d.result, needles)
            values: dict[str, Any] = {"payload": payload, "result": result}
            if d.kind == "invitation_email" and d.status == "pending":
                values.update(status="failed", last_error="cancelled: personal data erased")
            if payload != d.payload or result != d.result or "status" in values:
                privacy_store.set_delivery(s, d.id, **values)
                changed_deliveries += 1
        changed_events = 0
        for needle in [row.email_norm] if row.email_norm else []:
            for event in privacy_store.audit_events_of(s, [row.id], needle):
                actor = ERASED if any(n.lower() in event.actor.lower() for n in needles) else None
                detail = _scrub(event.detail, needles)
                if actor or detail != event.detail:
                    privacy_store.set_event(s, event.id, actor or event.actor, detail)
                    changed_events += 1
        privacy_store.erase_row(s, row.id, hashed, now)
        return changed_deliveries, changed_events

    # --- erasure on request ----------------------------------------------------------------

    def forget(self, email: str) -> Forgotten:
        """Erases one person everywhere. Refused while they are Associated: that association
        is the vendor's contract data, kept under the contract, not by this app's choice."""
        email_norm = self._checked(email)
        hashed = email_hash(self.key, email_norm)
        now = self.clock.now()
        with self.db.session() as s:
            rows = privacy_store.rows_of_person(s, email_norm, hashed)
            associated = [r for r in rows if r.status == "associated"]
            if associated:
                raise Refused(
                    "associated",
                    f"this person is Associated with a partner (preregistration "
                    f"{associated[0].id}): that is the vendor's contract data; end the "
                    "association in the vendor's systems first. Nothing was erased.",
                )
            deliveries = events = 0
            for row in rows:
                if row.status in LIVE_NOT_ASSOCIATED:
                    row.status, row.deleted_at, row.deleted_by = "deleted", now, "erasure"
                    s.flush()
                d, e = self._erase(s, row, now)
                deliveries, events = deliveries + d, events + e
            for event in privacy_store.audit_events_of(s, [], email_norm):
                mentioned = email_norm in event.actor.lower()
                actor = ERASED if mentioned else event.actor
                privacy_store.set_event(s, event.id, actor, _scrub(event.detail, [email_norm]))
                events += 1
            audit.record(
                s,
                at=now,
                actor=OPERATOR,
                action="forget",
                result="erased" if rows else "nothing_held",
                detail={"email_hash": hashed, "ids": [r.id for r in rows]},
            )
            return Forgotten(len(rows), deliveries, events)

    # --- access request --------------------------------------------------------------------

    def export_person(self, email: str) -> dict[str, Any]:
        """Everything held about one person, as JSON-ready data (a data-subject access request)."""
        email_norm = self._checked(email)
        hashed = email_hash(self.key, email_norm)
        with self.db.session() as s:
            rows = privacy_store.rows_of_person(s, email_norm, hashed)
            ids = [r.id for r in rows]
            events = privacy_store.audit_events_of(s, ids, email_norm)
            account = privacy_store.directory_account(s, email_norm)
            report = {
                "email": email_norm,
                "generated_at": _iso(self.clock.now()),
                "preregistrations": [_row(r) for r in rows],
                "notices": [_delivery(d) for d in privacy_store.deliveries_for(s, ids)],
                "audit_events": [_event(e) for e in events],
                "vendor_directory": _account(account) if account is not None else None,
            }
            audit.record(
                s,
                at=self.clock.now(),
                actor=OPERATOR,
                action="export_person",
                result="exported",
                detail={"email_hash": hashed, "ids": ids},
            )
            return report

    @staticmethod
    def _checked(email: str) -> str:
        error = email_error(email)
        if error:
            raise InvalidInput({"email": error})
        return normalise_email(email)


def record_disclosure(
    db: Database,
    clock: Clock,
    actor: str,
    action: str,
    ids: Sequence[int],
    partner_id: int | None = None,
) -> None:
    """Audits that `actor` saw the contact details of these preregistrations (who saw what).
    One insert, atomic on its own: in autocommit, without a transaction around it."""
    with db.writing(), db.autocommit() as conn:
        audit.record(
            conn,
            at=clock.now(),
            actor=actor,
            action=action,
            result="shown",
            partner_id=partner_id,
            detail={"ids": list(ids)},
        )


def _scrub(value: Any, needles: Sequence[str]) -> Any:
    """`value` (JSON) with every string that contains one of `needles` replaced by ERASED."""
    if isinstance(value, dict):
        return {k: _scrub(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, needles) for v in value]
    if isinstance(value, str) and any(n.lower() in value.lower() for n in needles if n):
        return ERASED
    return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _row(r: Preregistration) -> dict[str, Any]:
    return {
        "id": r.id,
        "partner": r.partner.name if r.partner is not None else None,
        "full_name": r.full_name,
        "email": r.email,
        "mobile": r.mobile,
        "status": r.status,
        "customer_country": r.customer_country,
        "association_type": r.association_type,
        "submitted_at": _iso(r.submitted_at),
        "expires_at": _iso(r.expires_at),
        "decided_at": _iso(r.decided_at),
        "associated_at": _iso(r.associated_at),
        "deleted_at": _iso(r.deleted_at),
        "expired_at": _iso(r.expired_at),
        "invited_at": _iso(r.invited_at),
        "erased_at": _iso(r.erased_at),
    }


def _delivery(d: Any) -> dict[str, Any]:
    return {
        "kind": d.kind,
        "status": d.status,
        "preregistration_id": d.preregistration_id,
        "created_at": _iso(d.created_at),
        "sent_at": _iso(d.sent_at),
        "payload": d.payload,
        "result": d.result,
    }


def _event(e: Any) -> dict[str, Any]:
    return {
        "at": _iso(e.at),
        "actor": e.actor,
        "action": e.action,
        "result": e.result,
        "preregistration_id": e.preregistration_id,
        "detail": e.detail,
    }


def _account(a: Any) -> dict[str, Any]:
    return {
        "email": a.email_norm,
        "country": a.country,
        "associated_partner": a.associated_partner,
        "updated_at": _iso(a.updated_at),
    }
