"""The preregistration service: one method per user intent, every rule R1–R12 enforced here.

Each method is one transaction (`Database.session()`); notices that follow from a change are
recorded in the outbox inside the same transaction, so they exist exactly when the change does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import logs, notices
from bot.clock import Clock
from bot.errors import InvalidInput, NotFound, Refused
from bot.i18n import LANGUAGES, N_, _, language
from bot.identity import org_of, same_org_key
from bot.member_cache import MemberCache
from bot.models import (
    DeleteResult,
    Eligibility,
    Outcome,
    Page,
    PartnerSummary,
    PartnerView,
    PreregistrationForm,
    PreregView,
)
from bot.rules import (
    ASSOCIATION_TYPE,
    DELETABLE_STATUSES,
    RuleSettings,
    directory_refusal,
    live_claim_refusal,
    quota_refusal,
    refusal,
    status_word,
)
from bot.validation import (
    clean_email,
    clean_mobile,
    clean_name,
    email_domain,
    email_error,
    has_control_chars,
    mobile_error,
    mobile_region,
    name_error,
    normalise_email,
    printable,
)
from bot.workdays import add_working_days
from store import audit, deliveries
from store import partners as partner_store
from store import preregistrations as prereg_store
from store import workspaces as workspace_store
from store.db import Database
from store.models import QUOTA_STATUSES, Partner, Preregistration

log = logging.getLogger(__name__)


class _SeenClick(Exception):
    """A click already recorded (a retry of it): its transaction decides nothing."""


def _no_address(email: str) -> dict[str, str]:
    """What an audit entry keeps of a refused customer's address: its domain, never the address
    (personal data; see docs/privacy.md)."""
    return {"email_domain": printable(email.rpartition("@")[2])[:100]}


class PreregistrationService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        rules: RuleSettings | None = None,
        members: MemberCache | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.rules = rules or RuleSettings()
        self.members = members

    # --- who is asking -------------------------------------------------------------------

    def partner_of(self, slack_user_id: str) -> PartnerView:
        """The member's partner, or Refused('not_a_member'). Through the member cache when
        there is one: this only gates opening the form; every change re-reads in its transaction."""
        if self.members is not None:
            partner = self.members.get(slack_user_id, self._read_partner)
        else:
            partner = self._read_partner(slack_user_id)
        if partner is None:
            raise refusal("not_a_member")
        logs.bind(partner_id=partner.id)
        return partner

    def _read_partner(self, slack_user_id: str) -> PartnerView | None:
        with self.db.autocommit() as conn:
            row = partner_store.partner_row_for_member(conn, slack_user_id, org_of(slack_user_id))
            if row is None:
                self._not_a_member_because(conn, slack_user_id)
        return None if row is None else PartnerView.from_row(row)

    def _not_a_member_because(self, conn: Connection, key: str) -> None:
        """Raises the refusal that tells a user of another workspace what to do (R13)."""
        org = org_of(key)
        if org is None:
            return
        installs = workspace_store.rows_for_org(conn, org)
        if installs and all(w.partner_id is None for w in installs):
            raise refusal("workspace_not_linked")
        if installs:
            raise refusal("not_picked")

    def ready_partner(self, slack_user_id: str) -> PartnerView:
        """The member's partner if it may preregister at all (R1), else Refused."""
        partner = self.partner_of(slack_user_id)
        if not partner.has_reserved_contact:
            raise refusal("no_reserved_contact")
        return partner

    def is_manager(self, slack_user_id: str) -> bool:
        with self.db.autocommit() as conn:
            return partner_store.manager_exists(conn, slack_user_id)

    def ensure_manager(
        self, slack_user_id: str, action: str, preregistration_id: int | None = None
    ) -> None:
        """Refused('not_a_manager'), audited, unless the user is an ecosystem manager."""
        if self.is_manager(slack_user_id):
            return
        refused = Refused(
            "not_a_manager",
            _("Only ecosystem managers can approve or reject reviews. Ask one of them to do it."),
        )
        self._audit_refusal(slack_user_id, action, refused, {"id": preregistration_id})
        raise refused

    def manager_contacts(self) -> list[tuple[str, str | None]]:
        """(Slack user id, email) of every ecosystem manager (R13). Read on every reply that
        names them, so one autocommit statement (no transaction, no ORM objects)."""
        with self.db.autocommit() as conn:
            return partner_store.manager_contacts(conn)

    # --- preregister (R1–R7) ---------------------------------------------------------------

    def validate_form(self, form: PreregistrationForm, partner_country: str | None) -> None:
        """Field errors for the modal, all at once (R6, R7)."""
        errors = {}
        for field, error in (
            ("full_name", name_error(form.full_name)),
            ("email", email_error(form.email)),
            ("mobile", mobile_error(form.mobile, partner_country)),
        ):
            if error:
                errors[field] = error
        if errors:
            raise InvalidInput(errors)

    def preregister(
        self, slack_user_id: str, form: PreregistrationForm, request_key: str | None = None
    ) -> Outcome:
        """Claims the customer for the member's partner, or sends it to review (R3).
        A repeated `request_key` returns the first outcome and changes nothing."""
        now = self.clock.now()
        key = request_key or None
        try:
            with self.db.session() as s:
                conn = s.connection()
                who = prereg_store.submitter(conn, slack_user_id, org_of(slack_user_id), key)
                replayed = self._replay(s, who.replay_id)
                if replayed is not None:
                    return replayed
                if who.partner is None:
                    raise refusal("not_a_member")
                *columns, active = who.partner
                partner = PartnerView(*columns)
                logs.bind(partner_id=partner.id)
                if not active:
                    raise refusal("partner_inactive")
                if not partner.has_reserved_contact:
                    raise refusal("no_reserved_contact")
                self.validate_form(form, partner.country)
                if not partner_store.lock_active_partner(s, partner.id):
                    raise refusal("partner_inactive")  # deactivated while we waited
                return self._claim(s, partner, slack_user_id, form, key, now)
        except IntegrityError as exc:
            return self._after_conflict(slack_user_id, form, request_key, exc)
        except Refused as refused:
            self._audit_refusal(slack_user_id, "preregister", refused, _no_address(form.email))
            raise

    @staticmethod
    def _replay(s: Session, preregistration_id: int | None) -> Outcome | None:
        """The first outcome of a request found recorded (its row's id), if it was."""
        existing = None if preregistration_id is None else prereg_store.get(s, preregistration_id)
        if existing is None:
            return None
        return Outcome(PreregView.of(existing, existing.partner), created=False)

    @staticmethod
    def _replayed(s: Session, request_key: str | None) -> Outcome | None:
        """The first outcome of this request, if it was already recorded."""
        existing = prereg_store.by_request_key(s, request_key) if request_key else None
        if existing is None:
            return None
        return Outcome(PreregView.of(existing, existing.partner), created=False)

    def _claim(
        self,
        s: Session,
        partner: PartnerView,
        user: str,
        form: PreregistrationForm,
        request_key: str | None,
        now: datetime,
    ) -> Outcome:
        """The claim itself; the caller holds the partner's lock, so the count cannot race.
        The rules' reads are one statement (prereg_store.claim_reads) and the row is a Core
        INSERT: the same statements decide as before, in fewer round trips and no unit of work."""
        email = clean_email(form.email)
        email_norm = normalise_email(email)
        mobile = clean_mobile(form.mobile, partner.country)
        name = clean_name(form.full_name)
        conn = s.connection()

        reads = prereg_store.claim_reads(
            conn, key=request_key, email_norm=email_norm, partner_id=partner.id, valid_at=now
        )
        # A concurrent retry of this submission may have committed while we waited.
        replayed = self._replay(s, reads.replay_id)
        if replayed is not None:
            return replayed
        live = reads.live
        if live is not None and self._is_lapsed(live, now):
            # a claim past its 15 days no longer blocks anyone, even before the sweep runs
            lapsed = prereg_store.get(s, live.id)
            if lapsed is not None:
                self._expire_row(s, lapsed, now)
            live = None

        account = reads.account
        if account is not None:
            cause = directory_refusal(account, partner.name)
            if cause:
                raise cause
        if live is not None:
            raise live_claim_refusal(live.status, live.partner_id == partner.id)
        # Counted before a lapsed claim above expired: the count leaves out a preregistration
        # past its validity whether or not it is marked expired, so the answer is the same.
        if reads.in_quota >= self.rules.quota_limit:
            raise quota_refusal(self.rules.quota_limit)

        country = account.country if account is not None else mobile_region(mobile)
        values: dict[str, object] = {
            "partner_id": partner.id,
            "full_name": name,
            "email": email,
            "email_norm": email_norm,
            "email_domain": email_domain(email_norm),
            "mobile": mobile,
            "send_invitation": form.send_invitation,
            "association_type": ASSOCIATION_TYPE,
            "customer_country": country,
            "submitted_by": user,
            "submitted_at": now,
            "request_key": request_key,
            "invite_failed_attempts": 0,
            "review_reason": None,
            "review_due_at": None,
            "expires_at": None,
        }
        if country and country != partner.country:
            values["status"] = "under_review"
            values["review_reason"] = (
                f"The customer's country ({country}) differs from the partner's business "
                f"country ({partner.country})."
            )
            values["review_due_at"] = add_working_days(
                now, self.rules.review_working_days, self.rules.holidays
            )
        else:
            values["status"] = "preregistered"
            values["expires_at"] = now + self.rules.validity
        if values["status"] == "under_review":
            kind = notices.REVIEW_REQUEST
        else:  # R8: yes emails the customer; no hands the partner the link and QR code
            kind = notices.INVITATION_EMAIL if form.send_invitation else notices.INVITATION_SHARE
        # the row, its audit event and its notice (one round trip on PostgreSQL)
        row_id = prereg_store.insert_claim(conn, values, {"country": country}, kind)
        logs.bind(preregistration_id=row_id)
        return Outcome(PreregView.new(row_id, values, partner), created=True)

    def _after_conflict(
        self,
        user: str,
        form: PreregistrationForm,
        request_key: str | None,
        exc: IntegrityError,
    ) -> Outcome:
        """A concurrent writer won the same customer or the same request: report what won."""
        with self.db.session() as s:
            replayed = self._replayed(s, request_key)
            if replayed is not None:
                return replayed
            live = prereg_store.live_for_email(s, normalise_email(form.email))
            partner_id = partner_store.member_partner_id(s, user, org_of(user))
        if live is None:
            raise exc
        refused = live_claim_refusal(live.status, live.partner_id == partner_id)
        self._audit_refusal(user, "preregister", refused, _no_address(form.email))
        raise refused

    def check(self, slack_user_id: str, email: str) -> Eligibility:
        """Whether the customer could be preregistered now, without claiming anything."""
        error = email_error(email)
        if error:
            raise InvalidInput({"email": error})
        email_norm = normalise_email(email)
        now = self.clock.now()
        # One autocommit statement (store/preregistrations.py `eligibility_facts`): a read,
        # deciding nothing for good; the submission decides again in its own transaction.
        with self.db.autocommit() as conn:
            facts = prereg_store.eligibility_facts(
                conn, slack_user_id, org_of(slack_user_id), email_norm, now
            )
        if facts is None:
            raise refusal("not_a_member")
        logs.bind(partner_id=facts.id)
        if not facts.active:
            return self._refusal_eligibility(refusal("partner_inactive"))
        if not (facts.contact_email or facts.contact_mobile):
            return self._refusal_eligibility(refusal("no_reserved_contact"))
        account = prereg_store.directory_account_of(facts)
        cause = directory_refusal(account, facts.name) if account else None
        live = facts._mapping
        status = live[prereg_store.LIVE_PREFIX + "status"]
        if cause is None and status is not None:
            expires_at = live[prereg_store.LIVE_PREFIX + "expires_at"]
            lapsed = status == "preregistered" and expires_at is not None and expires_at <= now
            if not lapsed:
                same = live[prereg_store.LIVE_PREFIX + "partner_id"] == facts.id
                cause = live_claim_refusal(status, same)
        if cause is None and live[prereg_store.QUOTA_USED] >= self.rules.quota_limit:
            cause = quota_refusal(self.rules.quota_limit)
        if cause is not None:
            return self._refusal_eligibility(cause)
        needs_review = account is not None and account.country != facts.country
        return Eligibility(
            allowed=True,
            needs_review=needs_review,
            customer_country=account.country if account is not None else None,
            partner_country=facts.country,
        )

    @staticmethod
    def _refusal_eligibility(cause: Refused) -> Eligibility:
        return Eligibility(allowed=False, code=cause.code, message=cause.message)

    # --- review (R3) -----------------------------------------------------------------------

    def approve(self, manager_id: str, preregistration_id: int) -> PreregView:
        return self._decide(manager_id, preregistration_id, approve=True, reason=None)[0]

    def approve_holding_update(
        self,
        manager_id: str,
        preregistration_id: int,
        token: str,
        lease: timedelta,
        click_id: str | None = None,
    ) -> tuple[PreregView, bool] | None:
        """`approve`, and in the same transaction the decision's notice (the review post's
        update, the submitter's DM) held for the caller under `token` for `lease`
        (store/deliveries.py `hold`), so that it can update the post at once. Returns the
        decided request and whether the notice is held (else the outbox sends it).

        With `click_id` (the click decided where it arrived, not queued with
        `queue_approval`), the click is recorded as decided in the same transaction, under
        the key `queue_approval` uses: a retry of that click, queued or decided here, finds
        it and decides nothing (None: this click was seen before)."""
        click = (
            None if click_id is None else self._click_key(manager_id, preregistration_id, click_id)
        )
        try:
            return self._decide(
                manager_id,
                preregistration_id,
                approve=True,
                reason=None,
                hold=(token, lease),
                click=click,
            )
        except _SeenClick:
            return None

    def reject(self, manager_id: str, preregistration_id: int, reason: str) -> PreregView:
        return self.reject_holding_update(manager_id, preregistration_id, reason)[0]

    def reject_holding_update(
        self,
        manager_id: str,
        preregistration_id: int,
        reason: str,
        hold: tuple[str, timedelta] | None = None,
    ) -> tuple[PreregView, bool]:
        """`reject`; with `hold` (token, lease), the decision's notice held for the caller as
        in `approve_holding_update`. Returns the request and whether the notice is held."""
        reason = " ".join(reason.split())
        if not reason:
            raise InvalidInput({"reason": _("Give a reason for the rejection.")})
        if has_control_chars(reason):
            raise InvalidInput(
                {"reason": _("The reason contains control or invisible characters.")}
            )
        if len(reason) > 500:
            raise InvalidInput({"reason": _("The reason is too long (at most 500 characters).")})
        return self._decide(manager_id, preregistration_id, approve=False, reason=reason, hold=hold)

    def _decide(
        self,
        manager_id: str,
        preregistration_id: int,
        *,
        approve: bool,
        reason: str | None,
        hold: tuple[str, timedelta] | None = None,
        click: str | None = None,
    ) -> tuple[PreregView, bool]:
        now = self.clock.now()
        action = "approve" if approve else "reject"
        try:
            with self.db.session() as s:
                if not partner_store.is_manager(s, manager_id):
                    raise Refused(
                        "not_a_manager",
                        _(
                            "Only ecosystem managers can approve or reject reviews. Ask one of "
                            "them to do it."
                        ),
                    )
                if click is not None and not deliveries.record_done(
                    s,
                    kind=notices.DECISION_CLICK,
                    dedupe_key=click,
                    payload={"preregistration_id": preregistration_id, "manager": manager_id},
                    now=now,
                ):
                    raise _SeenClick
                values: dict[str, object] = {
                    "decided_at": now,
                    "decided_by": manager_id,
                    "decision_reason": reason,
                }
                if approve:
                    values.update(status="preregistered", expires_at=now + self.rules.validity)
                else:
                    values.update(status="rejected")
                # The conditional update is the decision: of two deciders, one wins.
                decided = prereg_store.transition(
                    s, preregistration_id, ("under_review",), **values
                )
                row = prereg_store.get_with_partner(s, preregistration_id)
                if row is None:
                    raise NotFound(_("That preregistration no longer exists."))
                if not decided:
                    raise Refused(
                        "already_decided",
                        _("This request was already decided: it is {status}.").format(
                            status=status_word(row.status)
                        ),
                    )
                audit.record(
                    s,
                    at=now,
                    actor=manager_id,
                    action=action,
                    result=row.status,
                    preregistration_id=row.id,
                    partner_id=row.partner_id,
                    detail={"reason": reason} if reason else None,
                )
                self._notify(s, notices.REVIEW_DECIDED, row, now)
                held = hold is not None and deliveries.hold(
                    s,
                    notices.review_decided_key(row.id),
                    token=hold[0],
                    now=now,
                    lease_until=now + hold[1],
                )
                if approve:
                    self._notify_invitation(s, row, now)
                return PreregView.of(row, row.partner), held
        except Refused as refused:
            self._audit_refusal(manager_id, action, refused, {"id": preregistration_id})
            raise

    def queue_approval(
        self, manager_id: str, preregistration_id: int, click_id: str, reply_to: str | None
    ) -> bool:
        """Records a manager's Approve click for the background worker, which decides it with
        `approve` and answers at `reply_to`, in the manager's language (the one in use now).
        Keeps the click's request to one insert; a retry of the same click (same `click_id`)
        is recorded once. Returns whether it was new."""
        with self.db.autocommit() as conn:
            return deliveries.enqueue(
                conn,
                kind=notices.DECISION_CLICK,
                dedupe_key=self._click_key(manager_id, preregistration_id, click_id),
                payload={
                    "preregistration_id": preregistration_id,
                    "manager": manager_id,
                    "response_url": reply_to,
                    "lang": language(),
                },
                now=self.clock.now(),
            )

    @staticmethod
    def _click_key(manager_id: str, preregistration_id: int, click_id: str) -> str:
        return f"{notices.DECISION_CLICK}:{preregistration_id}:{manager_id}:{click_id}"[:200]

    def review_queue(self, limit: int = 50) -> list[PreregView]:
        with self.db.session() as s:
            return [PreregView.of(r, r.partner) for r in prereg_store.review_queue(s, limit)]

    def review_queue_total(self) -> int:
        with self.db.session() as s:
            return prereg_store.count_under_review(s)

    def set_review_message(self, preregistration_id: int, channel_id: str, ts: str) -> None:
        with self.db.session() as s:
            row = prereg_store.get(s, preregistration_id)
            if row is not None:
                row.review_channel_id = channel_id
                row.review_message_ts = ts

    # --- delete (R9) -----------------------------------------------------------------------

    def delete(self, slack_user_id: str, targets: Iterable[int | str]) -> list[DeleteResult]:
        """Deletes each target (a preregistration id or a customer email) of the member's own
        partner. Under review and Associated are refused; each target reports on its own."""
        now = self.clock.now()
        results = []
        for target in targets:
            results.append(self._delete_one(slack_user_id, target, now))
        return results

    def _delete_one(self, user: str, target: int | str, now: datetime) -> DeleteResult:
        label = printable(str(target))
        not_an_email = isinstance(target, str) and email_error(target) is not None
        # On SQLite the transaction writes (the audit, the change) after reading: queued with
        # the process's other writers (store/db.py `Database.writing`).
        with self.db.writing(), self.db.session() as s:
            partner = self._partner_of(s, user)
            row = None if not_an_email else self._find_own(s, partner.id, target)
            if row is None:
                audit.record(
                    s,
                    at=now,
                    actor=user,
                    action="delete",
                    result="refused:not_found",
                    partner_id=partner.id,
                    detail={"target": label[:200]},
                )
                return DeleteResult(
                    label,
                    False,
                    _("No customer {label} among your preregistrations.").format(label=label),
                )
            label = row.email
            if row.status not in DELETABLE_STATUSES:
                status = {
                    "under_review": N_("Under review"),
                    "action_required": N_("Action required"),
                    "associated": N_("Associated"),
                }.get(row.status, row.status)
                status = _(status)
                return DeleteResult(
                    label,
                    False,
                    _(
                        "{label} is {status}: customers under review or associated cannot be "
                        "deleted."
                    ).format(label=label, status=status),
                    row.id,
                )
            if not prereg_store.transition(
                s, row.id, DELETABLE_STATUSES, status="deleted", deleted_at=now, deleted_by=user
            ):
                return DeleteResult(
                    label,
                    False,
                    _("{label} changed meanwhile; try again.").format(label=label),
                    row.id,
                )
            audit.record(
                s,
                at=now,
                actor=user,
                action="delete",
                result="deleted",
                preregistration_id=row.id,
                partner_id=partner.id,
                detail={"previous": row.status},
            )
            return DeleteResult(
                label,
                True,
                _("{label} deleted; the customer is free again.").format(label=label),
                row.id,
            )

    def _find_own(self, s: Session, partner_id: int, target: int | str) -> Preregistration | None:
        if isinstance(target, int):
            row = prereg_store.get(s, target)
            return row if row is not None and row.partner_id == partner_id else None
        email_norm = normalise_email(target)
        live = prereg_store.live_for_email(s, email_norm)
        if live is not None and live.partner_id == partner_id:
            return live
        return prereg_store.latest_for_partner_email(s, partner_id, email_norm)

    # --- association (R6, R12) -------------------------------------------------------------

    def associate(self, preregistration_id: int, email: str) -> PreregView:
        """The customer accepted the invitation. The address must be the registered one (R6)
        and the preregistration still valid (R5)."""
        now = self.clock.now()
        self._settle_lapsed(preregistration_id, now)
        with self.db.session() as s:
            row = prereg_store.get(s, preregistration_id, for_update=True)
            if row is None:
                raise NotFound(_("This invitation does not exist."))
            if row.status == "associated":
                raise Refused("already_associated", _("This invitation has already been accepted."))
            if row.status != "preregistered":
                raise Refused(
                    f"invitation_{row.status}",
                    _(
                        "This invitation is no longer valid: the preregistration is {status}."
                    ).format(status=status_word(row.status)),
                    "R5",
                )
            if normalise_email(email) != row.email_norm:
                raise Refused(
                    "email_mismatch",
                    _(
                        "The address must be the one the partner registered for you. Use that "
                        "address, or ask the partner to register the one you sign up with."
                    ),
                    "R6",
                )
            prereg_store.transition(
                s, row.id, ("preregistered",), status="associated", associated_at=now
            )
            s.refresh(row)
            audit.record(
                s,
                at=now,
                actor="customer",
                action="associate",
                result="associated",
                preregistration_id=row.id,
                partner_id=row.partner_id,
            )
            self._notify(s, notices.ASSOCIATED, row, now)
            return PreregView.of(row, row.partner)

    # --- expiry (R5) -----------------------------------------------------------------------

    def expire_due(self, now: datetime | None = None, batch: int = 500) -> list[PreregView]:
        """Expires every preregistration whose 15 days have passed, recording one notice each."""
        now = now or self.clock.now()
        expired: list[PreregView] = []
        while True:
            with self.db.session() as s:
                ids = prereg_store.due_to_expire_ids(s, now, batch)
            for pid in ids:
                # A transaction per row: the expiry takes its partner's row lock (the quota
                # count's trigger, migration 0010); one per batch would hold many partners'
                # locks, in no set order, while submissions and other sweeps wait on them.
                with self.db.session() as s:
                    row = prereg_store.get(s, pid)
                    if row is not None and self._expire_row(s, row, now):
                        expired.append(PreregView.of(row, row.partner))
            if len(ids) < batch:
                return expired

    def deactivate_partner(self, partner_id: int, actor: str = "operator") -> list[PreregView]:
        """The partner may no longer preregister; its live claims (Under review or
        Preregistered) expire now, each with the usual expiry notice. History is kept."""
        now = self.clock.now()
        with self.db.session() as s:
            partner_store.lock_partner(s, partner_id)
            partner_store.set_active(s, partner_id, False)
            expired = []
            for row in prereg_store.for_partner(s, partner_id, statuses=QUOTA_STATUSES):
                if self._expire_row(s, row, now, QUOTA_STATUSES, actor, "partner_deactivated"):
                    expired.append(PreregView.of(row, row.partner))
            return expired

    def _expire_row(
        self,
        s: Session,
        row: Preregistration,
        now: datetime,
        from_statuses: Sequence[str] = ("preregistered",),
        actor: str = "system",
        because: str | None = None,
    ) -> bool:
        if not prereg_store.transition(s, row.id, from_statuses, status="expired", expired_at=now):
            return False
        s.refresh(row)
        audit.record(
            s,
            at=now,
            actor=actor,
            action="expire",
            result="expired",
            preregistration_id=row.id,
            partner_id=row.partner_id,
            detail={"because": because} if because else None,
        )
        self._notify(s, notices.EXPIRED, row, now)
        return True

    def _is_lapsed(self, row: Preregistration | prereg_store.LiveClaim, now: datetime) -> bool:
        return (
            row.status == "preregistered" and row.expires_at is not None and row.expires_at <= now
        )

    def _expire_if_lapsed(self, s: Session, row: Preregistration, now: datetime) -> None:
        if self._is_lapsed(row, now):
            self._expire_row(s, row, now)

    def _settle_lapsed(self, preregistration_id: int, now: datetime) -> None:
        """Expires the row in a transaction of its own, so a refusal that follows keeps it."""
        with self.db.session() as s:
            row = prereg_store.get(s, preregistration_id, for_update=True)
            if row is not None:
                self._expire_if_lapsed(s, row, now)

    # --- reading ---------------------------------------------------------------------------

    def get(self, slack_user_id: str, preregistration_id: int) -> PreregView:
        """One of the member's own preregistrations (never another partner's)."""
        with self.db.session() as s:
            partner = self._partner_of(s, slack_user_id)
            row = prereg_store.get(s, preregistration_id)
            if row is None or row.partner_id != partner.id:
                raise NotFound(_("This customer is not among your company's preregistrations."))
            return PreregView.of(row, partner)

    def view(self, preregistration_id: int) -> PreregView | None:
        """Any preregistration, for system work (notices, invitation pages)."""
        with self.db.session() as s:
            row = prereg_store.get_with_partner(s, preregistration_id)
            return PreregView.of(row, row.partner) if row is not None else None

    def list_customers(
        self,
        slack_user_id: str,
        statuses: Sequence[str] | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> Page:
        """One page of the member's own partner's preregistrations. One autocommit statement
        finds the partner and reads the page (no transaction, no ORM objects); an empty page
        looks the partner up on its own, to refuse a non-member or count the total."""
        with self.db.autocommit() as conn:
            rows, partner_row, total = prereg_store.page_for_member(
                conn,
                slack_user_id,
                org_of(slack_user_id),
                statuses=statuses,
                offset=offset,
                limit=limit,
            )
            if partner_row is None:
                partner_row = partner_store.partner_row_for_member(
                    conn, slack_user_id, org_of(slack_user_id)
                )
                if partner_row is None:
                    raise refusal("not_a_member")
                total = prereg_store.count_for_partner(conn, partner_row[0], statuses)
        partner = PartnerView.from_row(partner_row)
        logs.bind(partner_id=partner.id)
        return Page([PreregView.of(r, partner) for r in rows], total, offset, limit)

    def summary(self, slack_user_id: str, horizon: timedelta = timedelta(days=7)) -> PartnerSummary:
        """The member's partner at a glance (App Home). Someone who is no member is refused
        after one prebuilt select, before any transaction: App Home is opened by anyone."""
        now = self.clock.now()
        with self.db.autocommit() as conn:
            row = partner_store.partner_row_for_member(conn, slack_user_id, org_of(slack_user_id))
        if row is None:
            raise refusal("not_a_member")
        partner = PartnerView.from_row(row)
        logs.bind(partner_id=partner.id)
        with self.db.session() as s:
            counts = prereg_store.counts_by_status(s, partner.id)
            soon = prereg_store.expiring_between(s, now, now + horizon, partner.id, limit=20)
            return PartnerSummary(
                partner=partner,
                quota_used=prereg_store.count_in_quota(s, partner.id, now),
                quota_limit=self.rules.quota_limit,
                counts=counts,
                expiring_soon=[PreregView.of(r, partner) for r in soon],
            )

    def set_notice_channel(self, slack_user_id: str, channel_id: str | None) -> PartnerView:
        """Where the partner's notices go (None: a DM to the member who submitted)."""
        return self._set_channel(slack_user_id, "notice_channel", channel_id)

    def set_digest_channel(self, slack_user_id: str, channel_id: str | None) -> PartnerView:
        """Where the partner's daily digest goes (None: the notice channel, else DMs)."""
        return self._set_channel(slack_user_id, "digest_channel", channel_id)

    def _set_channel(self, slack_user_id: str, which: str, channel_id: str | None) -> PartnerView:
        setter = {
            "notice_channel": partner_store.set_notice_channel,
            "digest_channel": partner_store.set_digest_channel,
        }[which]
        if channel_id is not None:
            channel_id = same_org_key(slack_user_id, channel_id)
        with self.db.session() as s:
            partner = self._partner_of(s, slack_user_id)
            setter(s, partner.id, channel_id)
            audit.record(
                s,
                at=self.clock.now(),
                actor=slack_user_id,
                action=which,
                result="set" if channel_id else "cleared",
                partner_id=partner.id,
                detail={"channel": channel_id},
            )
            s.refresh(partner)
            return PartnerView.of(partner)

    def set_language(self, slack_user_id: str, channel_id: str, language: str) -> str:
        """`/preregister language`: a partner member sets their company's language (its
        channel posts and invitation emails); a manager sets the language of the channel they
        typed it in (the review channel). Returns "partner" or "channel"."""
        if language not in LANGUAGES:
            raise InvalidInput({"language": _("Choose zh or en.")})
        now = self.clock.now()
        with self.db.session() as s:
            partner = partner_store.partner_for_member(s, slack_user_id, org_of(slack_user_id))
            if partner is not None:
                partner_store.set_language(s, partner.id, language)
                which, detail = "partner", {"language": language}
            elif partner_store.is_manager(s, slack_user_id):
                channel = same_org_key(slack_user_id, channel_id)
                partner_store.set_channel_language(s, channel, language, slack_user_id, now)
                which, detail = "channel", {"language": language, "channel": channel}
            else:
                raise refusal("not_a_member")
            audit.record(
                s,
                at=now,
                actor=slack_user_id,
                action="language",
                result=which,
                partner_id=partner.id if partner is not None else None,
                detail=detail,
            )
        return which

    def channel_language(self, channel_key: str) -> str | None:
        with self.db.session() as s:
            return partner_store.channel_language(s, channel_key)

    def mark_invited(self, preregistration_id: int, at: datetime | None = None) -> None:
        with self.db.session() as s:
            row = prereg_store.get(s, preregistration_id)
            if row is not None:
                row.invited_at = at or self.clock.now()

    def request_invitation_email(self, slack_user_id: str, preregistration_id: int) -> PreregView:
        """The partner chose 'no' at first (R8) and now asks for the email to go out."""
        now = self.clock.now()
        self._settle_lapsed(preregistration_id, now)
        try:
            return self._request_invitation_email(slack_user_id, preregistration_id, now)
        except (Refused, NotFound) as exc:
            code = exc.code if isinstance(exc, Refused) else "not_found"
            self._audit_refusal(
                slack_user_id,
                "request_invitation",
                Refused(code, exc.message),
                {"id": preregistration_id},
            )
            raise

    def _request_invitation_email(
        self, slack_user_id: str, preregistration_id: int, now: datetime
    ) -> PreregView:
        with self.db.session() as s:
            partner = self._partner_of(s, slack_user_id)
            row = prereg_store.get(s, preregistration_id)
            if row is None or row.partner_id != partner.id:
                raise NotFound(_("This customer is not among your company's preregistrations."))
            if row.status != "preregistered":
                raise Refused(
                    "not_invitable",
                    _("{email} is {status}: only preregistered customers can be invited.").format(
                        email=row.email, status=status_word(row.status)
                    ),
                )
            deliveries.enqueue(
                s,
                kind=notices.INVITATION_EMAIL,
                dedupe_key=f"{notices.INVITATION_EMAIL}:{row.id}",
                payload={"preregistration_id": row.id},
                now=now,
                preregistration_id=row.id,
            )
            audit.record(
                s,
                at=now,
                actor=slack_user_id,
                action="request_invitation",
                result="queued",
                preregistration_id=row.id,
                partner_id=partner.id,
            )
            return PreregView.of(row, partner)

    # --- internals -------------------------------------------------------------------------

    def _partner_of(self, s: Session, slack_user_id: str) -> Partner:
        partner = partner_store.partner_for_member(s, slack_user_id, org_of(slack_user_id))
        if partner is None:
            raise refusal("not_a_member")
        logs.bind(partner_id=partner.id)
        return partner

    def _notify(self, s: Session, kind: str, row: Preregistration, now: datetime) -> None:
        logs.bind(preregistration_id=row.id)
        deliveries.enqueue(
            s,
            kind=kind,
            dedupe_key=f"{kind}:{row.id}",
            payload={"preregistration_id": row.id},
            now=now,
            preregistration_id=row.id,
        )

    def _notify_invitation(self, s: Session, row: Preregistration, now: datetime) -> None:
        """R8: yes emails the customer; no hands the partner the link and QR code."""
        kind = notices.INVITATION_EMAIL if row.send_invitation else notices.INVITATION_SHARE
        self._notify(s, kind, row, now)

    def _audit_refusal(self, actor: str, action: str, refused: Refused, detail: dict) -> None:
        try:
            with self.db.session() as s:
                audit.record(
                    s,
                    at=self.clock.now(),
                    actor=actor,
                    action=action,
                    result=f"refused:{refused.code}",
                    partner_id=partner_store.member_partner_id(s, actor, org_of(actor)),
                    detail=detail,
                )
        except Exception:
            log.exception("could not audit a refusal")
