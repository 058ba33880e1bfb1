"""Invitation links (R6, R8, R12): signed tokens and what the invitation page shows.

A token is `urlsafe-base64(version | preregistration id | email tag | MAC)`:
- the MAC is HMAC-SHA256 (truncated to 128 bits) over the rest, keyed from `INVITE_SECRET`,
  so a changed byte is detected as tampering, not mistaken for an unknown invitation;
- the email tag is a keyed digest of the normalised address: the token is bound to the
  registered email without putting the address itself into links and QR codes.
A valid signature is not enough: the token works only while its preregistration (looked up
through the service) is Preregistered, unexpired, and still has the same email.

Guessing the address (R6). The link travels as a QR code and may be seen by others, so:
- Lock-out per client, not per invitation: each client (a keyed digest of its network
  address; an IPv6 address counts by its /64, what one subscriber gets) may have
  MAX_FAILED_ATTEMPTS addresses compared per LOCKOUT window, then waits out the LOCKOUT.
  A third party who locks itself out does not lock out the customer on another network.
  (Clients behind one NAT share a count: an abuser in the customer's own office can still
  delay them; the partner is alerted, see below.)
- Count before checking: an attempt takes its slot in one conditional UPDATE before its address
  is compared (store/invitations.py), so concurrent posts from one client get at most
  MAX_FAILED_ATTEMPTS comparisons, the right address among them: racing wrong ones, the right
  address associates only if it took one of those slots, and a locked client is refused
  without any comparison. A slot is given back only when no address was compared.
- The page issues the form's token (bot/web/invite_pages.py), short-lived and bound to the
  client: a POST without a fresh page from the same client compares nothing and counts nothing.
- Text outside R6's ASCII characters is refused before any comparison (no Unicode look-alike
  can match: bot/validation.is_rule_email, normalise_email) and does not count: it cannot be
  the address.
- The partner is alerted once (outbox notice GUESSING_ALERT) when wrong addresses on one
  invitation, all clients together, reach MAX_FAILED_ATTEMPTS within a LOCKOUT window.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import struct
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from bot.errors import NotFound, Refused
from bot.i18n import N_, _, format_when, ngettext
from bot.models import PreregView
from bot.service import PreregistrationService
from bot.validation import is_rule_email, normalise_email
from store import audit, deliveries
from store import invitations as invitation_store
from store import preregistrations as prereg_store

TOKEN_VERSION = 1
_TAG_BYTES = 12
_MAC_BYTES = 16
_HEAD = struct.Struct(">BQ")  # version, preregistration id
_TOKEN_BYTES = _HEAD.size + _TAG_BYTES + _MAC_BYTES
_MAX_TOKEN_CHARS = 128

MAX_FAILED_ATTEMPTS = 5
"""Addresses one client may have compared on one invitation within LOCKOUT before it waits."""
LOCKOUT = timedelta(minutes=15)
GUESSING_ALERT = "invitation_guessing"
"""Outbox kind {preregistration_id, wrong}: tell the partner their invitation is being guessed."""
DECLINED_NOTICE = "invitation_declined"
"""Outbox kind {preregistration_id}: the customer said "this wasn't me"; tell the partner."""
CUSTOMER = "customer"
"""`deleted_by` of a preregistration the customer withdrew from the invitation page."""


class TokenError(Exception):
    """The token was not issued by us: malformed, truncated, altered or signed with another key."""


def derive_key(secret: str, purpose: str) -> bytes:
    """One key per purpose from INVITE_SECRET, so a MAC made for one use is useless in another."""
    return hmac.new(secret.encode(), f"prereg-bot/{purpose}".encode(), hashlib.sha256).digest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)


@dataclass(frozen=True)
class TokenClaims:
    preregistration_id: int
    email_tag: bytes


class TokenSigner:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("an invitation secret is required")
        self._mac_key = derive_key(secret, "invitation-token")
        self._email_key = derive_key(secret, "invitation-email")

    def email_tag(self, email_norm: str) -> bytes:
        digest = hmac.new(self._email_key, email_norm.encode(), hashlib.sha256).digest()
        return digest[:_TAG_BYTES]

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._mac_key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(self, preregistration_id: int, email_norm: str) -> str:
        body = _HEAD.pack(TOKEN_VERSION, preregistration_id) + self.email_tag(email_norm)
        return _b64encode(body + self._mac(body))

    def verify(self, token: str) -> TokenClaims:
        """The claims of a token we issued; TokenError for anything else."""
        if not token or len(token) > _MAX_TOKEN_CHARS or not token.isascii():
            raise TokenError("malformed token")
        try:
            raw = _b64decode(token)
        except (binascii.Error, ValueError):
            raise TokenError("malformed token") from None
        if len(raw) != _TOKEN_BYTES or _b64encode(raw) != token:
            raise TokenError("malformed token")
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body)):
            raise TokenError("bad signature")
        version, preregistration_id = _HEAD.unpack(body[: _HEAD.size])
        if version != TOKEN_VERSION:
            raise TokenError(f"unknown token version {version}")
        return TokenClaims(preregistration_id, body[_HEAD.size :])

    def email_matches(self, claims: TokenClaims, email_norm: str) -> bool:
        return hmac.compare_digest(claims.email_tag, self.email_tag(email_norm))


class InviteState(StrEnum):
    """What a visitor of the invitation page meets."""

    VALID = "valid"
    FORGED = "forged"
    UNKNOWN = "unknown"
    PENDING_REVIEW = "pending_review"
    EXPIRED = "expired"
    DELETED = "deleted"
    REJECTED = "rejected"
    USED = "used"
    # outcomes of a submitted form
    ASSOCIATED = "associated"
    MISMATCH = "mismatch"
    MISSING_EMAIL = "missing_email"
    INVALID_EMAIL = "invalid_email"
    LOCKED = "locked"
    FORM_EXPIRED = "form_expired"
    # "this wasn't me": the confirmation page, and the invitation withdrawn by the customer
    DECLINE = "decline"
    DECLINED = "declined"


_STATUS_STATES = {
    "associated": InviteState.USED,
    "expired": InviteState.EXPIRED,
    "deleted": InviteState.DELETED,
    "rejected": InviteState.REJECTED,
    "under_review": InviteState.PENDING_REVIEW,
}


@dataclass(frozen=True)
class Invitation:
    state: InviteState
    preregistration: PreregView | None = None
    attempts_left: int | None = None
    retry_at: datetime | None = None
    notified: bool = False
    """A notice was recorded (the partner alerted): delivery should be woken."""


@dataclass(frozen=True)
class InvitePage:
    """Everything the page template needs; the words come from here, not from the view."""

    state: InviteState
    http_status: int
    heading: str
    message: str
    advice: str
    show_form: bool
    partner_name: str | None
    decline_form: bool = False
    """The "this wasn't me" confirmation form instead of the acceptance form."""
    offer_decline: bool = False
    """A link to "this wasn't me" (only while the invitation can still be withdrawn)."""


DEFAULT_VENDOR = N_("the cloud vendor")
DEFAULT_PROGRAM = N_("partner program")


@dataclass(frozen=True)
class Branding:
    """Who the customer is dealing with, shown on the page and in the email so that an
    invitation can be told apart from phishing: the vendor, its program, whom to ask."""

    vendor: str = DEFAULT_VENDOR
    program: str = DEFAULT_PROGRAM
    logo_url: str | None = None
    support_url: str | None = None
    support_email: str | None = None
    site: str | None = None
    """The host invitation links point to (PUBLIC_BASE_URL): how to check a link is genuine."""

    @classmethod
    def from_settings(cls, settings: Any) -> Branding:
        base = settings.public_base_url or ""
        return cls(
            vendor=settings.vendor_name or DEFAULT_VENDOR,
            program=settings.program_name or DEFAULT_PROGRAM,
            logo_url=settings.vendor_logo_url,
            support_url=settings.support_url,
            support_email=settings.support_email,
            site=urlsplit(base).hostname if base else None,
        )

    def localised(self) -> Branding:
        """The same branding in the language in use: only the generic names are translated
        (a configured vendor or program name is shown as configured)."""
        return replace(
            self,
            vendor=_(DEFAULT_VENDOR) if self.vendor == DEFAULT_VENDOR else self.vendor,
            program=_(DEFAULT_PROGRAM) if self.program == DEFAULT_PROGRAM else self.program,
        )

    @property
    def contact(self) -> str:
        """Whom to ask, in words: the support page and/or address, else the vendor."""
        if self.support_url and self.support_email:
            return _("{first} or {second}").format(
                first=self.support_url, second=self.support_email
            )
        return self.support_url or self.support_email or _("its support")


class Invitations:
    """Issues invitation links and decides what each visit and each submitted form leads to."""

    def __init__(
        self,
        service: PreregistrationService,
        secret: str | None,
        base_url: str | None,
        *,
        max_failed_attempts: int = MAX_FAILED_ATTEMPTS,
        lockout: timedelta = LOCKOUT,
    ) -> None:
        self.service = service
        self._secret = secret
        self._base_url = (base_url or "").rstrip("/")
        self.max_failed_attempts = max_failed_attempts
        self.lockout = lockout
        self._client_key = derive_key(secret or "", "invitation-client")

    @property
    def signer(self) -> TokenSigner:
        if not self._secret:
            raise RuntimeError("INVITE_SECRET is not set: invitation links cannot be signed")
        return TokenSigner(self._secret)

    # --- issuing ---------------------------------------------------------------------------

    def token_for(self, view: PreregView) -> str:
        return self.signer.sign(view.id, normalise_email(view.email))

    def link_for(self, view: PreregView) -> str:
        if not self._base_url:
            raise RuntimeError("PUBLIC_BASE_URL is not set: invitation links cannot be made")
        return f"{self._base_url}/invite/{self.token_for(view)}"

    def client_of(self, address: str | None) -> str:
        """The key a client's attempts are counted under: a keyed digest of its network address
        (no address is stored), IPv6 by its /64 prefix."""
        text = address or ""
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            ip = None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
            text = str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
        elif isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            text = str(ip.ipv4_mapped)
        return hmac.new(self._client_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    # --- visiting --------------------------------------------------------------------------

    def resolve(self, token: str) -> Invitation:
        """The invitation behind a token, in its current state."""
        signer = self.signer
        try:
            claims = signer.verify(token)
        except TokenError:
            return Invitation(InviteState.FORGED)
        view = self.service.view(claims.preregistration_id)
        if view is None or not signer.email_matches(claims, normalise_email(view.email)):
            return Invitation(InviteState.UNKNOWN)
        if view.status == "preregistered":
            lapsed = view.expires_at is not None and view.expires_at <= self.service.clock.now()
            return Invitation(InviteState.EXPIRED if lapsed else InviteState.VALID, view)
        return Invitation(_STATUS_STATES.get(view.status, InviteState.UNKNOWN), view)

    def accept(self, token: str, email: str, client: str = "") -> Invitation:
        """The customer submitted the form: associate (R12) when the address matches (R6).
        `client` is the key from `client_of`; see the module docstring for the lock-out."""
        invitation = self.resolve(token)
        if invitation.state is not InviteState.VALID:
            return invitation
        view = invitation.preregistration
        assert view is not None
        retry_at = self.locked_until(view.id, client)
        if retry_at is not None:
            return Invitation(InviteState.LOCKED, view, attempts_left=0, retry_at=retry_at)
        if not email.strip():
            return Invitation(InviteState.MISSING_EMAIL, view)
        if not is_rule_email(email):
            return Invitation(InviteState.INVALID_EMAIL, view)
        number = self._reserve(view.id, client)
        if number is None:
            retry_at = self.locked_until(view.id, client) or self.service.clock.now() + self.lockout
            return Invitation(InviteState.LOCKED, view, attempts_left=0, retry_at=retry_at)
        try:
            associated = self.service.associate(view.id, email)
        except NotFound:
            self._refund(view.id, client)
            return Invitation(InviteState.UNKNOWN)
        except Refused as refused:
            if refused.code != "email_mismatch":
                self._refund(view.id, client)
                return self.resolve(token)
            return self._count_mismatch(view, number)
        return Invitation(InviteState.ASSOCIATED, associated)

    def decline(self, token: str) -> Invitation:
        """The customer said "this wasn't me": the preregistration ends (deleted by the
        customer, who is free again), the partner is told, and it is audited. Only a valid
        invitation can be withdrawn; any other state is returned as it is."""
        invitation = self.resolve(token)
        if invitation.state is not InviteState.VALID:
            return invitation
        view = invitation.preregistration
        assert view is not None
        now = self.service.clock.now()
        with self.service.db.session() as s:
            values = {"status": "deleted", "deleted_at": now, "deleted_by": CUSTOMER}
            ended = prereg_store.transition(s, view.id, ("preregistered",), **values)
            if not ended:
                return self.resolve(token)
            audit.record(
                s,
                at=now,
                actor=CUSTOMER,
                action="decline_invitation",
                result="deleted",
                preregistration_id=view.id,
                partner_id=view.partner_id,
            )
            deliveries.enqueue(
                s,
                kind=DECLINED_NOTICE,
                dedupe_key=f"{DECLINED_NOTICE}:{view.id}",
                payload={"preregistration_id": view.id},
                now=now,
                preregistration_id=view.id,
            )
        return Invitation(InviteState.DECLINED, self.service.view(view.id), notified=True)

    def locked_until(self, preregistration_id: int, client: str = "") -> datetime | None:
        """When this client may try again, if it used all its attempts in the last LOCKOUT."""
        now = self.service.clock.now()
        with self.service.db.session() as s:
            count, last = invitation_store.client_attempts(s, preregistration_id, client)
        if count >= self.max_failed_attempts and last is not None and now - last < self.lockout:
            return last + self.lockout
        return None

    def _reserve(self, preregistration_id: int, client: str) -> int | None:
        now = self.service.clock.now()
        with self.service.db.session() as s:
            return invitation_store.reserve_attempt(
                s,
                preregistration_id,
                client,
                now=now,
                window_start=now - self.lockout,
                limit=self.max_failed_attempts,
            )

    def _refund(self, preregistration_id: int, client: str) -> None:
        with self.service.db.session() as s:
            invitation_store.refund_attempt(s, preregistration_id, client)

    def _count_mismatch(self, view: PreregView, number: int) -> Invitation:
        """A wrong address, compared as attempt `number` of its client: counted in the
        invitation's total, which alerts the partner once it reaches the limit."""
        now = self.service.clock.now()
        with self.service.db.session() as s:
            total = invitation_store.record_failed_attempt(
                s, view.id, now=now, window_start=now - self.lockout
            )
            notified = total >= self.max_failed_attempts and deliveries.enqueue(
                s,
                kind=GUESSING_ALERT,
                dedupe_key=f"{GUESSING_ALERT}:{view.id}",
                payload={"preregistration_id": view.id, "wrong": total},
                now=now,
                preregistration_id=view.id,
            )
        left = self.max_failed_attempts - number
        if left <= 0:
            return Invitation(
                InviteState.LOCKED,
                view,
                attempts_left=0,
                retry_at=now + self.lockout,
                notified=notified,
            )
        return Invitation(InviteState.MISMATCH, view, attempts_left=left, notified=notified)


def record_notice(service: PreregistrationService, kind: str, preregistration_id: int) -> bool:
    """Records a follow-up notice about an invitation, once per kind and preregistration.
    Returns whether it is new (False when it was recorded before)."""
    with service.db.session() as s:
        return deliveries.enqueue(
            s,
            kind=kind,
            dedupe_key=f"{kind}:{preregistration_id}",
            payload={"preregistration_id": preregistration_id},
            now=service.clock.now(),
            preregistration_id=preregistration_id,
        )


def page_for(invitation: Invitation) -> InvitePage:
    """What the invitation page says for each state: which case it is and what to do next,
    in the language in use (bot.i18n.use)."""
    view = invitation.preregistration
    partner = view.partner_name if view is not None else None
    who = partner or _("the partner who invited you")
    state = invitation.state

    def page(status: int, heading: str, message: str, advice: str, form: bool = False, **more):
        return InvitePage(state, status, heading, message, advice, form, partner, **more)

    if state is InviteState.VALID:
        return page(
            200,
            _("{who} invites you to become its customer").format(who=who),
            _(
                "Accepting associates your cloud account with {who} as your Reseller: {who} can "
                "then buy and manage cloud services for you, handle your billing and support "
                "you. Nothing changes in your account until you accept."
            ).format(who=who),
            _(
                "Enter the email address you sign up with. It must be the address {who} "
                "registered for you."
            ).format(who=who),
            form=True,
            offer_decline=True,
        )
    if state is InviteState.DECLINE:
        return page(
            200,
            _("This invitation was not meant for you?"),
            _(
                "If you do not know {who} or did not ask to become its customer, withdraw this "
                "invitation: the registration {who} made for your address ends, {who} is told, "
                "and no one can accept it with this link any more."
            ).format(who=who),
            _("Nothing happens unless you press the button."),
            decline_form=True,
        )
    if state is InviteState.DECLINED:
        return page(
            200,
            _("The invitation is withdrawn"),
            _(
                "Thank you. The registration {who} made for your address has ended and {who} "
                "has been told. Your account was not changed."
            ).format(who=who),
            _("There is nothing more to do. You can close this page."),
        )
    if state is InviteState.DELETED and view is not None and view.deleted_by == CUSTOMER:
        return page(
            410,
            _("This invitation was withdrawn"),
            _(
                "It was withdrawn from this page (\u201cthis wasn\u2019t me\u201d), so the link "
                "no longer works."
            ),
            _(
                "If you want to become {who}'s customer after all, ask them to register you again."
            ).format(who=who),
        )
    if state is InviteState.ASSOCIATED:
        return page(
            200,
            _("You are now {who}'s customer").format(who=who),
            _(
                "Your account is associated with {who}; association type: Reseller. "
                "{who} has been told."
            ).format(who=who),
            _("There is nothing more to do. You can close this page."),
        )
    if state is InviteState.MISMATCH:
        left = invitation.attempts_left or 0
        tries = ngettext("{n} more try", "{n} more tries", left).format(n=left)
        return page(
            422,
            _("That address does not match"),
            _(
                "The address must match the one {who} registered for you. Nothing was changed."
            ).format(who=who),
            _(
                "Enter the email address you sign up with ({tries}). If you sign up with another "
                "address, ask {who} to register that address and send a new invitation."
            ).format(tries=tries, who=who),
            form=True,
        )
    if state is InviteState.MISSING_EMAIL:
        return page(
            422,
            _("Enter your email address"),
            _("The form was sent without an email address."),
            _(
                "Enter the email address you sign up with; it must be the one {who} registered."
            ).format(who=who),
            form=True,
        )
    if state is InviteState.INVALID_EMAIL:
        return page(
            422,
            _("That is not an email address we can accept"),
            _(
                "An email address may contain only the letters a to z, digits, the characters "
                "_ - . and one @. Nothing was changed."
            ),
            _("Enter the email address you sign up with, exactly as {who} registered it.").format(
                who=who
            ),
            form=True,
        )
    if state is InviteState.FORM_EXPIRED:
        return page(
            400,
            _("Please send the form again"),
            _(
                "The form could not be verified: it was too old or did not come from this page. "
                "Nothing was changed."
            ),
            _("Enter your email address below and send the form again."),
            form=True,
        )
    if state is InviteState.LOCKED:
        at = invitation.retry_at
        advice = (
            _(
                "Try again after {when} UTC with the address {who} registered, or ask {who} for "
                "help."
            ).format(when=format_when(at.astimezone(UTC)), who=who)
            if at is not None
            else _(
                "Try again in a while with the address {who} registered, or ask {who} for help."
            ).format(who=who)
        )
        return page(
            429,
            _("Too many attempts"),
            _("A wrong email address was entered too many times, so this invitation is paused."),
            advice,
        )
    if state is InviteState.USED:
        return page(
            410,
            _("This invitation has already been accepted"),
            _("The account is associated with {who}. An invitation can be used only once.").format(
                who=who
            ),
            _(
                "There is nothing more to do. If you did not accept it yourself, contact {who}."
            ).format(who=who),
        )
    if state is InviteState.EXPIRED:
        return page(
            410,
            _("This invitation has expired"),
            _("Invitations are valid for 15 days after the partner registers you."),
            _("Ask {who} to register you again; you will get a new invitation.").format(who=who),
        )
    if state is InviteState.DELETED:
        return page(
            410,
            _("This invitation was withdrawn"),
            _("{who} deleted the registration, so this link no longer works.").format(who=who),
            _(
                "If you still want to become {who}'s customer, ask them to register you again."
            ).format(who=who),
        )
    if state is InviteState.REJECTED:
        return page(
            410,
            _("This invitation is not valid"),
            _("The registration behind it was not approved."),
            _("Contact {who} if you have questions.").format(who=who),
        )
    if state is InviteState.PENDING_REVIEW:
        return page(
            409,
            _("This invitation is not active yet"),
            _("The registration behind it is still being reviewed."),
            _("Open the link again once {who} confirms the registration.").format(who=who),
        )
    if state is InviteState.UNKNOWN:
        return page(
            404,
            _("This invitation does not exist"),
            _("No registration matches this link."),
            _("Ask the partner who invited you to send a new invitation."),
        )
    return page(
        400,
        _("This invitation link is not valid"),
        _("The link was changed or copied incompletely, so it cannot be trusted."),
        _(
            "Open the link exactly as you received it (or scan the QR code), or ask the partner "
            "who invited you to send it again."
        ),
    )
