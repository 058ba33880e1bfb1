"""The managers' desk: send a request back for information (action_required) and the
partner's resubmission, one reviewer per case, similar requests at the customer's email
domain, and the program overview for the managers' App Home.

Every change is one transaction with its audit event and its outbox notices, and every
change of status or reviewer is a conditional update, so two people acting at the same
instant cannot both win (send back vs. approve, resubmit vs. expiry, two managers taking
one case).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import notices
from bot.errors import InvalidInput, NotFound, Refused
from bot.freemail import FREE_MAIL_DOMAINS
from bot.i18n import _
from bot.models import PreregistrationForm, PreregView
from bot.rules import directory_refusal, live_claim_refusal, status_word
from bot.service import PreregistrationService
from bot.validation import (
    clean_email,
    clean_mobile,
    clean_name,
    email_domain,
    has_control_chars,
    normalise_email,
)
from bot.workdays import add_working_days
from store import audit, deliveries
from store import desk as desk_store
from store import directory as directory_store
from store import partners as partner_store
from store import preregistrations as prereg_store
from store.models import Preregistration

INFO_WORKING_DAYS = 5
"""An unanswered request for information expires after this many working days."""
INFO_REMINDER_BEFORE = timedelta(days=1)
SIMILAR_WINDOW = timedelta(days=90)
SIMILAR_LIMIT = 8
REVIEWABLE = ("under_review", "action_required")
QUEUE_DUE_SOON = timedelta(hours=24)
"""How close a review deadline is before the managers' queue marks it "due soon"."""
"""Statuses in which a case has a reviewer (the manager who took it)."""
TEXT_LIMIT = 1000


def clean_text(raw: str | None, field_name: str, missing: str) -> str:
    """A question or answer: required, one line of printable text, at most 1000 characters."""
    text = " ".join((raw or "").split())
    if not text:
        raise InvalidInput({field_name: missing})
    if has_control_chars(text):
        raise InvalidInput({field_name: _("The text contains control or invisible characters.")})
    if len(text) > TEXT_LIMIT:
        raise InvalidInput(
            {field_name: _("The text is too long (at most {n} characters).").format(n=TEXT_LIMIT)}
        )
    return text


def review_urgency(due_at: datetime | None, now: datetime) -> str | None:
    """How the managers' queue marks a review deadline: "overdue", "due_soon" or None."""
    if due_at is None:
        return None
    if due_at <= now:
        return "overdue"
    return "due_soon" if due_at - now <= QUEUE_DUE_SOON else None


def info_round(asked_at: datetime | None) -> int:
    """Which sending-back this is: notices of one round exist once, of the next round anew."""
    return int(asked_at.timestamp()) if asked_at else 0


@dataclass(frozen=True)
class SimilarRow:
    partner_name: str
    status: str
    submitted_at: datetime
    email: str
    own_partner: bool


@dataclass(frozen=True)
class Similar:
    """Other requests at the customer's email domain (none looked up for free-mail domains)."""

    domain: str
    free_mail: bool
    others: list[SimilarRow] = field(default_factory=list)
    own: list[SimilarRow] = field(default_factory=list)


@dataclass(frozen=True)
class ProgramRow:
    partner_id: int
    name: str
    country: str
    quota_used: int
    quota_limit: int
    counts: dict[str, int]
    last_activity: datetime | None


class Desk:
    def __init__(self, service: PreregistrationService) -> None:
        self.service = service
        self.db = service.db
        self.clock = service.clock
        self.rules = service.rules

    # --- send back for information ---------------------------------------------------------

    def send_back(self, manager: str, preregistration_id: int, question: str) -> PreregView:
        """The case goes to the partner with a question; its review deadline pauses."""
        question = clean_text(question, "question", _("Ask the partner a question."))
        now = self.clock.now()
        due = add_working_days(now, INFO_WORKING_DAYS, self.rules.holidays)
        try:
            with self.db.session() as s:
                self._ensure_manager(s, manager)
                moved = prereg_store.transition(
                    s,
                    preregistration_id,
                    ("under_review",),
                    status="action_required",
                    info_question=question,
                    info_asked_by=manager,
                    info_asked_at=now,
                    info_due_at=due,
                    info_answer=None,
                )
                row = self._row(s, preregistration_id, moved)
                self._audit(s, manager, "send_back", row, {"question": question})
                self._enqueue(s, notices.INFO_REQUESTED, row, info_round(now), now)
                self._refresh(s, row, now)
                return PreregView.of(row, row.partner)
        except Refused as refused:
            self.service._audit_refusal(manager, "send_back", refused, {"id": preregistration_id})
            raise

    def resubmit(
        self, user: str, preregistration_id: int, form: PreregistrationForm, answer: str
    ) -> PreregView:
        """The partner's answer and edited details: back under review, a fresh deadline."""
        answer = clean_text(answer, "answer", _("Answer the manager's question."))
        now = self.clock.now()
        try:
            with self.db.session() as s:
                return self._resubmit(s, user, preregistration_id, form, answer, now)
        except IntegrityError:
            refused = Refused(
                "preregistered_by_another_partner",
                _(
                    "Another partner has already preregistered the new email address. Ask your "
                    "ecosystem manager if you think it is yours."
                ),
                "R2",
            )
            self.service._audit_refusal(user, "resubmit", refused, {"id": preregistration_id})
            raise refused from None
        except Refused as refused:
            self.service._audit_refusal(user, "resubmit", refused, {"id": preregistration_id})
            raise

    def _resubmit(
        self,
        s: Session,
        user: str,
        preregistration_id: int,
        form: PreregistrationForm,
        answer: str,
        now: datetime,
    ) -> PreregView:
        partner = self.service._partner_of(s, user)
        self.service.validate_form(form, partner.country)
        row = prereg_store.get(s, preregistration_id)
        if row is None or row.partner_id != partner.id:
            raise NotFound(_("This customer is not among your company's preregistrations."))
        email = clean_email(form.email)
        email_norm = normalise_email(email)
        if email_norm != row.email_norm:
            account = directory_store.account(s, email_norm)
            cause = directory_refusal(account, partner.name) if account else None
            live = prereg_store.live_for_email(s, email_norm)
            if cause is None and live is not None and live.id != row.id:
                cause = live_claim_refusal(live.status, live.partner_id == partner.id)
            if cause is not None:
                raise cause
        asked_at = row.info_asked_at
        moved = prereg_store.transition(
            s,
            row.id,
            ("action_required",),
            status="under_review",
            full_name=clean_name(form.full_name),
            email=email,
            email_norm=email_norm,
            email_domain=email_domain(email_norm),
            mobile=clean_mobile(form.mobile, partner.country),
            send_invitation=form.send_invitation,
            info_answer=answer,
            info_due_at=None,
            review_due_at=add_working_days(
                now, self.rules.review_working_days, self.rules.holidays
            ),
        )
        s.flush()
        s.refresh(row)
        if not moved:
            raise Refused(
                "not_waiting",
                _("This request no longer waits for your answer: it is {status} now.").format(
                    status=status_word(row.status)
                ),
            )
        self._audit(s, user, "resubmit", row, {"answer": answer})
        self._enqueue(s, notices.INFO_ANSWERED, row, info_round(asked_at), now)
        return PreregView.of(row, row.partner)

    def expire_unanswered(self, now: datetime | None = None, batch: int = 500) -> int:
        """Expires requests for information unanswered past their 5 working days."""
        now = now or self.clock.now()
        expired = 0
        while True:
            with self.db.session() as s:
                ids = desk_store.info_due_between(s, None, now, batch)
            for pid in ids:
                # a transaction per row, as in the service's expire_due (partner row locks)
                with self.db.session() as s:
                    if prereg_store.transition(
                        s, pid, ("action_required",), status="expired", expired_at=now
                    ):
                        row = self._row(s, pid, True)
                        self._audit(s, "system", "expire", row, {"unanswered": True})
                        self._enqueue(
                            s, notices.INFO_EXPIRED, row, info_round(row.info_asked_at), now
                        )
                        self._refresh(s, row, now)
                        expired += 1
            if len(ids) < batch:
                return expired

    def enqueue_info_reminders(self, now: datetime, batch: int = 500) -> int:
        """One reminder per round, the day before the unanswered request expires."""
        added = 0
        with self.db.session() as s:
            for pid in desk_store.info_due_between(s, now, now + INFO_REMINDER_BEFORE, batch):
                row = prereg_store.get(s, pid)
                if row is not None:
                    added += self._enqueue(
                        s, notices.INFO_REMINDER, row, info_round(row.info_asked_at), now
                    )
        return added

    # --- one reviewer per case -------------------------------------------------------------

    def take(self, manager: str, preregistration_id: int) -> PreregView:
        return self._assign(manager, preregistration_id, "take", manager)

    def release(self, manager: str, preregistration_id: int) -> PreregView:
        return self._assign(manager, preregistration_id, "release", None)

    def reassign(self, manager: str, preregistration_id: int, to: str) -> PreregView:
        return self._assign(manager, preregistration_id, "reassign", to)

    def _assign(
        self, manager: str, preregistration_id: int, action: str, to: str | None
    ) -> PreregView:
        now = self.clock.now()
        try:
            with self.db.session() as s:
                self._ensure_manager(s, manager)
                if action == "reassign" and not (to and partner_store.is_manager(s, to)):
                    raise Refused(
                        "not_a_manager",
                        _("Only an ecosystem manager can take a case. Pick one of them."),
                    )
                before = prereg_store.get(s, preregistration_id)
                changed = desk_store.set_reviewer(
                    s,
                    preregistration_id,
                    to,
                    now,
                    statuses=REVIEWABLE,
                    only_if_free=action == "take",
                    only_if=manager if action == "release" else None,
                )
                row = self._row(s, preregistration_id, True)
                if not changed:
                    raise self._not_assigned(row, manager, action)
                previous = before.reviewer if before is not None else None
                self._audit(s, manager, action, row, {"from": previous, "to": to})
                self._refresh(s, row, now)
                return PreregView.of(row, row.partner)
        except Refused as refused:
            self.service._audit_refusal(manager, action, refused, {"id": preregistration_id})
            raise

    @staticmethod
    def _not_assigned(row: Preregistration, manager: str, action: str) -> Refused:
        if row.status not in REVIEWABLE:
            return Refused(
                "already_decided",
                _("This request was already decided: it is {status}.").format(
                    status=status_word(row.status)
                ),
            )
        if action == "take" and row.reviewer == manager:
            return Refused("already_yours", _("You already have this case."))
        if action == "take":
            return Refused(
                "taken",
                _(
                    "<@{reviewer}> already has this case. Reassign it if you should take over."
                ).format(reviewer=row.reviewer),
            )
        return Refused(
            "not_yours",
            _("Only the manager who has this case can release it. Ask them, or reassign it."),
        )

    def confirm_needed(self, manager: str, preregistration_id: int) -> str | None:
        """The other manager who has the case, if `manager` approving it should confirm first."""
        with self.db.session() as s:
            row = prereg_store.get(s, preregistration_id)
            if row is None or row.status != "under_review" or row.reviewer in (None, manager):
                return None
            return row.reviewer

    # --- similar requests ------------------------------------------------------------------

    def similar(self, preregistration_id: int) -> Similar | None:
        """Other live or recent (90 days) requests at this customer's email domain."""
        with self.db.session() as s:
            row = prereg_store.get(s, preregistration_id)
            if row is None:
                return None
            domain = row.email_domain or email_domain(row.email_norm)
            if domain in FREE_MAIL_DOMAINS:
                return Similar(domain, free_mail=True)
            since = self.clock.now() - SIMILAR_WINDOW
            found = desk_store.same_domain(s, domain, row.id, since, 2 * SIMILAR_LIMIT)
            rows = [
                SimilarRow(
                    r.partner.name,
                    r.status,
                    r.submitted_at,
                    r.email,
                    r.partner_id == row.partner_id,
                )
                for r in found
            ]
        return Similar(
            domain,
            free_mail=False,
            others=[r for r in rows if not r.own_partner][:SIMILAR_LIMIT],
            own=[r for r in rows if r.own_partner][:SIMILAR_LIMIT],
        )

    # --- the program overview (managers' App Home) -----------------------------------------

    def program(
        self, sort: str = "quota", offset: int = 0, limit: int = 50
    ) -> tuple[list[ProgramRow], int]:
        """Partners with quota use, counts by status and last activity; one page of them.
        The database sorts and pages by quota use; counts by status and the last activity are
        read for the page's partners only."""
        now = self.clock.now()
        with self.db.session() as s:
            page, total = desk_store.program_page(s, now, sort == "quota", offset, limit)
            ids = [p.id for p in page]
            counts = desk_store.counts_by_partner(s, ids)
            last = desk_store.last_activity_by_partner(s, ids)
            rows = [
                ProgramRow(
                    p.id,
                    p.name,
                    p.country,
                    int(p.used),
                    self.rules.quota_limit,
                    counts.get(p.id, {}),
                    last.get(p.id),
                )
                for p in page
            ]
        return rows, total

    # --- internals -------------------------------------------------------------------------

    @staticmethod
    def _ensure_manager(s: Session, user: str) -> None:
        if not partner_store.is_manager(s, user):
            raise Refused("not_a_manager", _("Only ecosystem managers can do this."))

    @staticmethod
    def _row(s: Session, preregistration_id: int, changed: bool) -> Preregistration:
        s.flush()
        row = prereg_store.get_with_partner(s, preregistration_id)
        if row is None:
            raise NotFound(_("That preregistration no longer exists."))
        s.refresh(row)
        if not changed:
            raise Refused(
                "already_decided",
                _("This request was already decided: it is {status}.").format(
                    status=status_word(row.status)
                ),
            )
        return row

    def _audit(
        self, s: Session, actor: str, action: str, row: Preregistration, detail: dict
    ) -> None:
        audit.record(
            s,
            at=self.clock.now(),
            actor=actor,
            action=action,
            result=row.status,
            preregistration_id=row.id,
            partner_id=row.partner_id,
            detail=detail,
        )

    @staticmethod
    def _enqueue(s: Session, kind: str, row: Preregistration, round_: int, now: datetime) -> bool:
        return deliveries.enqueue(
            s,
            kind=kind,
            dedupe_key=f"{kind}:{row.id}:{round_}",
            payload={"preregistration_id": row.id},
            now=now,
            preregistration_id=row.id,
        )

    @staticmethod
    def _refresh(s: Session, row: Preregistration, now: datetime) -> None:
        """Re-render the review post from the row's state when the worker gets to it."""
        deliveries.enqueue(
            s,
            kind=notices.REVIEW_REFRESH,
            dedupe_key=f"{notices.REVIEW_REFRESH}:{row.id}:{uuid.uuid4().hex}",
            payload={"preregistration_id": row.id},
            now=now,
            preregistration_id=row.id,
        )
