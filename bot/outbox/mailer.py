"""The invitation email (R8 yes): composed with the link and its QR code, sent over SMTP.

Sending runs from the outbox (bot/outbox/delivery.py): a failed send raises, so the Deliverer
retries it with backoff; the preregistration itself never depends on mail. The partner is told
in Slack when the email is pending (after the first failure), when it keeps failing, and when
it finally went out.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from jinja2 import Environment, PackageLoader, select_autoescape

from bot import metrics
from bot.i18n import _, format_when, html_lang, install_jinja, use
from bot.invitations import Branding, Invitations, record_notice
from bot.models import PreregView
from bot.outbox.delivery import Job, PermanentFailure, persist
from bot.outbox.qr import qr_png
from bot.service import PreregistrationService
from bot.settings import Settings
from store import deliveries

log = logging.getLogger(__name__)

# Notice kinds recorded by the email sender (payload {preregistration_id}); Slack senders in
# handlers/invitations.py.
EMAIL_PENDING = "invitation_email_pending"  # first failure: "pending, will retry"
EMAIL_FAILING = "invitation_email_failing"  # still failing after FAILING_AFTER_ATTEMPT tries
EMAIL_SENT_LATE = "invitation_email_sent_late"  # went out after having been reported pending
FAILING_AFTER_ATTEMPT = 3

_templates = Environment(
    loader=PackageLoader("bot.outbox", "templates"),
    autoescape=select_autoescape(["html"]),
)
install_jinja(_templates)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        if not settings.smtp_host or not settings.smtp_from:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def short_msgid(domain: str | None) -> str:
    """A Message-ID short enough never to be folded onto a second header line (make_msgid's
    length varies with the process id and host, and a folded id reads back with a space)."""
    return f"<{secrets.token_hex(12)}.invitation@{domain or 'localhost'}>"


def format_expiry(view: PreregView) -> str:
    """When the invitation lapses, written as the reader writes dates, in UTC."""
    at = view.expires_at
    if at is None:
        return _("15 days after registration")
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return f"{format_when(at.astimezone(UTC), length='long')} UTC"


def compose(
    view: PreregView,
    link: str,
    sender: str,
    at: datetime,
    qr: bytes | None = None,
    brand: Branding | None = None,
) -> EmailMessage:
    """Plain text and an HTML alternative; the HTML shows the QR code as an inline image.
    Both say who the vendor is, why the customer got it, how to check it is genuine and how
    to say "this wasn't me" (a link to a confirmation page: the link itself changes nothing).
    Written in the partner's language (`/preregister language`), English if it has none."""
    with use(view.partner_language):
        return _compose(view, link, sender, at, qr, (brand or Branding()).localised())


def _compose(
    view: PreregView, link: str, sender: str, at: datetime, qr: bytes | None, brand: Branding
) -> EmailMessage:
    partner = _one_line(view.partner_name)
    expiry = format_expiry(view)
    qr = qr if qr is not None else qr_png(link)
    domain = sender.rpartition("@")[2] or None
    qr_cid = make_msgid("qr", domain=domain)

    message = EmailMessage()
    message["Subject"] = _("{who} invites you to become its customer").format(who=partner)
    message["From"] = formataddr((f"{brand.vendor} {brand.program}", sender))
    message["To"] = view.email
    if view.partner_contact_email:
        message["Reply-To"] = view.partner_contact_email
    message["Message-ID"] = short_msgid(domain)
    message["Date"] = format_datetime(at)
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = html_lang()
    context = {
        "name": _one_line(view.full_name),
        "partner": partner,
        "email": view.email,
        "association_type": _("Reseller"),
        "link": link,
        "decline_link": f"{link}/not-me",
        "expiry": expiry,
        "brand": brand,
        "reply_to": view.partner_contact_email,
        "html_lang": html_lang(),
    }
    message.set_content(_plain_text(**context))
    html = _templates.get_template("invitation_email.html").render(
        qr_cid=qr_cid.strip("<>"), **context
    )
    message.add_alternative(html, subtype="html")
    html_part = message.get_payload()[1]
    html_part.add_related(qr, "image", "png", cid=qr_cid, filename="invitation-qr.png")
    return message


def _plain_text(
    *,
    name: str,
    partner: str,
    email: str,
    association_type: str,
    link: str,
    decline_link: str,
    expiry: str,
    brand: Branding,
    reply_to: str | None,
    html_lang: str,
) -> str:
    support = brand.contact
    site = f"https://{brand.site}/invite/" if brand.site else _("the address above")
    lines = [
        f"{brand.vendor} {brand.program}",
        "",
        _("Hello {name},").format(name=name),
        "",
        _("{partner} invites you to associate your cloud account with it.").format(partner=partner),
        _(
            "Association type: {association_type}. {partner} can then buy and manage cloud "
            "services for you, handle your billing and support you."
        ).format(association_type=association_type, partner=partner),
        "",
        _("Accept the invitation here (valid until {expiry}):").format(expiry=expiry),
        link,
        "",
        _(
            "On that page, enter the email address you sign up with: {email}. It must be the "
            "address {partner} registered for you."
        ).format(email=email, partner=partner),
        "",
        _(
            "If you did not expect this invitation, ignore this email: nothing happens unless "
            "you accept."
        ),
        "",
        "--",
        _(
            "Why you got this: {partner}, a partner in the {vendor} {program}, registered this "
            "address for you."
        ).format(partner=partner, vendor=brand.vendor, program=brand.program),
        _(
            "Is it genuine? The link starts with {site}; we never ask for a password or "
            "payment details. To check, contact {vendor} at {support}."
        ).format(site=site, vendor=brand.vendor, support=support),
        _("This wasn't me: {link}").format(link=decline_link),
    ]
    if reply_to:
        lines.append(
            _("Replies go to {partner} ({reply_to}).").format(partner=partner, reply_to=reply_to)
        )
    return "\n".join(lines) + "\n"


def send(message: EmailMessage, config: SmtpConfig) -> None:
    """Hands the message to the SMTP server; raises on any failure (refused, down, timeout)."""
    try:
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, config.password or "")
            smtp.send_message(message, from_addr=config.sender, to_addrs=[message["To"]])
    except BaseException:
        metrics.EMAILS.labels("failed").inc()
        raise
    metrics.EMAILS.labels("sent").inc()


class InvitationEmailSender:
    """The outbox sender for `invitation_email`."""

    def __init__(
        self,
        service: PreregistrationService,
        invitations: Invitations,
        config: SmtpConfig | None,
        kick: Callable[[], None] = lambda: None,
        brand: Branding | None = None,
    ) -> None:
        self.brand = brand or Branding()
        self.service = service
        self.invitations = invitations
        self.config = config
        self.kick = kick

    def __call__(self, job: Job) -> dict[str, str]:
        pid = int(job.payload["preregistration_id"])
        view = self.service.view(pid)
        if view is None:
            raise PermanentFailure(f"preregistration {pid} does not exist")
        if view.invited_at is not None:
            return {"to": view.email, "already_sent_at": view.invited_at.isoformat()}
        if view.status != "preregistered":
            raise PermanentFailure(f"preregistration {pid} is {view.status}: no invitation")
        if view.expires_at is not None and view.expires_at <= self.service.clock.now():
            raise PermanentFailure(f"preregistration {pid} has lapsed: no invitation")
        if self.config is None:
            raise RuntimeError("SMTP_HOST and SMTP_FROM are not set: cannot send email")
        link = self.invitations.link_for(view)
        message = compose(
            view, link, self.config.sender, self.service.clock.now(), brand=self.brand
        )
        try:
            send(message, self.config)
        except Exception:
            self._record_failure(job, pid)
            raise
        persist(lambda: self.service.mark_invited(pid), f"that invitation email {pid} went out")
        if job.attempt > 1:
            try:
                self._record_recovery(pid)
            except Exception:  # noqa: BLE001 - the email went out; only the follow-up is lost
                log.exception("could not record that invitation email %s went out", pid)
        return {"to": view.email, "message_id": str(message["Message-ID"])}

    def _record_failure(self, job: Job, pid: int) -> None:
        """Tells the partner (once each) that the email is pending, and that it keeps failing."""
        try:
            added = record_notice(self.service, EMAIL_PENDING, pid)
            if job.attempt >= FAILING_AFTER_ATTEMPT:
                added = record_notice(self.service, EMAIL_FAILING, pid) or added
        except Exception:  # noqa: BLE001 - the send failure is what gets reported and retried
            log.exception("could not record that invitation email %s is pending", pid)
            return
        if added:
            self.kick()

    def _record_recovery(self, pid: int) -> None:
        with self.service.db.session() as s:
            reported = deliveries.by_key(s, f"{EMAIL_PENDING}:{pid}") is not None
        if reported and record_notice(self.service, EMAIL_SENT_LATE, pid):
            self.kick()


def compose_notice(to: str, subject: str, text: str, sender: str, at: datetime) -> EmailMessage:
    """A plain notice by email: what a partner would have read in Slack, when its workspace
    no longer has the app (the reserved contact of R1 receives it)."""
    message = EmailMessage()
    message["Subject"] = _one_line(subject)
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid("notice", domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = html_lang()  # the language in use: the notice's own
    message.set_content(text)
    return message
