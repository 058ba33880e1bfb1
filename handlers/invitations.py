"""Invitations in Slack (R8, R12): the link and QR code for the partner, the "Send invitation
email" button, and the partner's notices about the email and the association.

Senders (outbox kinds): `invitation_email` (bot/outbox/mailer.py), `invitation_share`,
`invitation_share_button`, `associated`, `invitation_email_pending`,
`invitation_email_failing`, `invitation_email_sent_late`, `invitation_guessing`,
`invitation_declined`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot import notices
from bot.errors import NotFound, Refused
from bot.i18n import _
from bot.invitations import (
    DECLINED_NOTICE,
    GUESSING_ALERT,
    Branding,
    Invitations,
    record_notice,
)
from bot.models import PreregView
from bot.outbox.delivery import Job, PermanentFailure, persist
from bot.outbox.mailer import (
    EMAIL_FAILING,
    EMAIL_PENDING,
    EMAIL_SENT_LATE,
    FAILING_AFTER_ATTEMPT,
    InvitationEmailSender,
    SmtpConfig,
)
from bot.outbox.qr import qr_png
from bot.slack.after_ack import after_ack
from bot.slack.workspaces import WorkspaceUnavailable
from handlers.ids import parse_id
from handlers.mrkdwn import escape, format_when, link
from handlers.reach import in_reader_language, or_email

log = logging.getLogger(__name__)

ACTION_SEND_EMAIL = "send_invitation_email"
SHARE_BUTTON = "invitation_share_button"  # {preregistration_id}: the button after the QR upload


# --- Block Kit and text (pure) ---------------------------------------------------------------


def _customer(view: PreregView) -> str:
    return f"*{escape(view.full_name)}* ({escape(view.email)})"


def _valid_until(view: PreregView) -> str:
    if view.expires_at:
        return _("valid until {when}").format(when=format_when(view.expires_at))
    return _("valid 15 days")


def share_comment(view: PreregView, url: str) -> str:
    """The comment on the uploaded QR code (R8 no): the link to share yourself."""
    return _(
        "Invitation for {customer} ({valid}). Share this link or the QR code with the "
        "customer: {link}\nThey accept it with the email address you registered."
    ).format(
        customer=_customer(view), valid=_valid_until(view), link=link(url, _("invitation link"))
    )


def share_button_message(view: PreregView) -> dict[str, Any]:
    text = _("Prefer that we email the invitation to {customer}?").format(customer=_customer(view))
    button = {
        "type": "button",
        "action_id": ACTION_SEND_EMAIL,
        "text": {"type": "plain_text", "text": _("Send invitation email")},
        "value": str(view.id),
        "style": "primary",
        "accessibility_label": _("Email the invitation to {name}").format(name=view.full_name[:60]),
    }
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "block_id": f"invite_{view.id}", "elements": [button]},
        ],
    }


def associated_text(view: PreregView) -> str:
    return ":handshake: " + _(
        "{customer} accepted the invitation and is now associated with *{partner}* "
        "(association type: Reseller)."
    ).format(customer=_customer(view), partner=escape(view.partner_name))


def email_pending_text(view: PreregView) -> str:
    return ":hourglass_flowing_sand: " + _(
        "The invitation email to {customer} is pending: the mail server did not take it yet. "
        "It will be retried automatically; the preregistration stands."
    ).format(customer=_customer(view))


def email_failing_text(view: PreregView, url: str) -> str:
    return ":warning: " + _(
        "The invitation email to {customer} still fails after {attempts} attempts. It keeps "
        "being retried for several hours; meanwhile you can share the {link} yourself ({valid})."
    ).format(
        customer=_customer(view),
        attempts=FAILING_AFTER_ATTEMPT,
        link=link(url, _("invitation link")),
        valid=_valid_until(view),
    )


def guessing_text(view: PreregView, wrong: int) -> str:
    return ":rotating_light: " + _(
        "Wrong email addresses were entered {wrong} times on the invitation for {customer}. "
        "Each device that tries too often is paused for a while; your customer can still "
        "accept with the address you registered. If the link or QR code reached people it "
        "should not have, delete this registration and register the customer again: they get "
        "a new invitation with a new link."
    ).format(wrong=wrong, customer=_customer(view))


def declined_text(view: PreregView) -> str:
    return ":no_entry: " + _(
        "{customer} opened the invitation and said it was not for them (\u201cthis wasn't "
        "me\u201d). The registration has ended and the customer is free again. Please check how "
        "this address reached you before registering it again."
    ).format(customer=_customer(view))


def email_sent_late_text(view: PreregView) -> str:
    return ":email: " + _("The invitation email to {customer} has now been sent.").format(
        customer=_customer(view)
    )


def email_request_reply(view: PreregView) -> str:
    if view.invited_at is not None:
        return _("An invitation email already went to {customer} on {when}.").format(
            customer=_customer(view), when=format_when(view.invited_at)
        )
    return _("The invitation email to {customer} is on its way.").format(customer=_customer(view))


# --- senders ---------------------------------------------------------------------------------


def _view(services: Any, job: Job, view: PreregView | None, *, preregistered: bool) -> PreregView:
    """`view`, the notice's preregistration as read for this send, if there is one to send."""
    pid = int(job.payload["preregistration_id"])
    if view is None:
        raise PermanentFailure(f"preregistration {pid} does not exist")
    if preregistered and view.status != "preregistered":
        raise PermanentFailure(f"preregistration {pid} is {view.status}: nothing to share")
    if preregistered and view.expires_at and view.expires_at <= services.clock.now():
        raise PermanentFailure(f"preregistration {pid} has lapsed: nothing to share")
    return view


def _dm(client: Any, user: str, key: str, known: dict[str, str]) -> str:
    """The app's direct-message channel with the member of `key`. It never changes, so Slack is
    asked once per process and member (an approval sends up to three DMs to the same member)."""
    channel = known.get(key)
    if channel is None:
        channel = known[key] = client.conversations_open(users=user)["channel"]["id"]
    return channel


def _post_dm(
    services: Any, known: dict[str, str], view: PreregView, text: str, **extra: Any
) -> dict[str, Any]:
    """A DM to the member who submitted `view`, in their workspace; by email to the partner's
    contact if that workspace's installation is gone."""

    def in_slack() -> dict[str, Any]:
        with services.slack.reaching(view.submitted_by) as (client, user):
            channel = _dm(client, user, view.submitted_by, known)
            response = client.chat_postMessage(channel=channel, text=text, **extra)
        return {"channel": channel, "ts": response.get("ts")}

    subject = _("prereg-bot: news about your customer {name}").format(name=view.full_name)
    return or_email(services, view.partner_id, subject, text, in_slack)


def _senders(services: Any, invitations: Invitations) -> dict[str, Callable[[Job], Any]]:
    service = services.service
    dm_channels: dict[str, str] = {}

    def in_readers_language(
        *, preregistered: bool
    ) -> Callable[[Callable[[Job, PreregView], Any]], Callable[[Job], Any]]:
        """A notice to the member who submitted: its preregistration read once per send and
        checked (`_view`), handed to the sender, whose texts are in that member's language."""

        def wrap(sender: Callable[[Job, PreregView], Any]) -> Callable[[Job], Any]:
            def send(job: Job) -> Any:
                read = service.view(int(job.payload["preregistration_id"]))
                view = _view(services, job, read, preregistered=preregistered)
                with in_reader_language(services, view.submitted_by, view.partner_language):
                    return sender(job, view)

            return send

        return wrap

    @in_readers_language(preregistered=True)
    def share(job: Job, view: PreregView) -> dict[str, Any]:
        url = invitations.link_for(view)

        def in_slack() -> dict[str, Any]:
            with services.slack.reaching(view.submitted_by) as (client, user):
                channel = _dm(client, user, view.submitted_by, dm_channels)
                # Before the QR code is drawn: a paced upload is tried again later, and the
                # code drawn for it was thrown away (once per notice in a burst).
                client.defer_unless_ready("files.getUploadURLExternal")
                client.files_upload_v2(
                    channel=channel,
                    content=qr_png(url),
                    filename=f"invitation-{view.id}.png",
                    title=_("Invitation QR code for {name}").format(name=view.full_name[:100]),
                    alt_txt=_("QR code of the invitation link for {name}").format(
                        name=view.full_name[:100]
                    ),
                    initial_comment=share_comment(view, url),
                )
            if persist(
                lambda: record_notice(service, SHARE_BUTTON, view.id),
                f"the button that follows invitation share {view.id}",
            ):
                services.deliverer.kick()
            return {"channel": channel}

        subject = _("prereg-bot: the invitation link for {name}").format(name=view.full_name)
        return or_email(services, view.partner_id, subject, share_comment(view, url), in_slack)

    @in_readers_language(preregistered=True)
    def share_button(job: Job, view: PreregView) -> dict[str, Any]:
        try:
            with services.slack.reaching(view.submitted_by) as (client, user):
                channel = _dm(client, user, view.submitted_by, dm_channels)
                response = client.chat_postMessage(channel=channel, **share_button_message(view))
        except WorkspaceUnavailable:  # a button is of no use by email: the link went already
            return {"skipped": "workspace unavailable"}
        return {"channel": channel, "ts": response.get("ts")}

    @in_readers_language(preregistered=False)
    def associated(job: Job, view: PreregView) -> dict[str, Any]:
        return _post_dm(services, dm_channels, view, associated_text(view))

    @in_readers_language(preregistered=True)
    def pending(job: Job, view: PreregView) -> dict[str, Any]:
        return _post_dm(services, dm_channels, view, email_pending_text(view))

    @in_readers_language(preregistered=True)
    def failing(job: Job, view: PreregView) -> dict[str, Any]:
        text = email_failing_text(view, invitations.link_for(view))
        return _post_dm(services, dm_channels, view, text)

    @in_readers_language(preregistered=True)
    def guessing(job: Job, view: PreregView) -> dict[str, Any]:
        text = guessing_text(view, int(job.payload.get("wrong") or 0))
        return _post_dm(services, dm_channels, view, text)

    @in_readers_language(preregistered=False)
    def declined(job: Job, view: PreregView) -> dict[str, Any]:
        return _post_dm(services, dm_channels, view, declined_text(view))

    @in_readers_language(preregistered=False)
    def sent_late(job: Job, view: PreregView) -> dict[str, Any]:
        return _post_dm(services, dm_channels, view, email_sent_late_text(view))

    return {
        notices.INVITATION_EMAIL: InvitationEmailSender(
            service,
            invitations,
            SmtpConfig.from_settings(services.settings),
            kick=services.deliverer.kick,
            brand=Branding.from_settings(services.settings),
        ),
        notices.INVITATION_SHARE: share,
        SHARE_BUTTON: share_button,
        notices.ASSOCIATED: associated,
        EMAIL_PENDING: pending,
        EMAIL_FAILING: failing,
        EMAIL_SENT_LATE: sent_late,
        GUESSING_ALERT: guessing,
        DECLINED_NOTICE: declined,
    }


def invitations_of(services: Any) -> Invitations:
    settings = services.settings
    return Invitations(services.service, settings.invite_secret, settings.public_base_url)


def register_senders(registry: Any, services: Any) -> None:
    for kind, sender in _senders(services, invitations_of(services)).items():
        registry.register(kind, sender)


# --- the "Send invitation email" button ------------------------------------------------------


def _reply(body: dict[str, Any], respond: Any, client: Any, text: str) -> None:
    """An ephemeral answer where the button was pressed (a DM when there is no channel)."""
    user = body["user"]["id"]
    if body.get("response_url"):
        respond(text=text, response_type="ephemeral", replace_original=False)
    elif (body.get("channel") or {}).get("id"):
        client.chat_postEphemeral(channel=body["channel"]["id"], user=user, text=text)
    else:
        client.chat_postMessage(channel=user, text=text)


def register(app: Any, services: Any) -> None:
    @app.action(ACTION_SEND_EMAIL)
    @after_ack
    def send_invitation_email(
        body: dict[str, Any], respond: Any, client: Any, context: Any
    ) -> None:
        user = context["actor"]
        pid = parse_id((body.get("actions") or [{}])[0].get("value"))
        if pid is None:
            _reply(
                body,
                respond,
                client,
                _("That button is out of date. List your customers again: `/preregister list`."),
            )
            return
        try:
            view = services.service.request_invitation_email(user, pid)
        except (Refused, NotFound) as refused:
            text = escape(refused.message)
        else:
            services.deliverer.kick()
            text = email_request_reply(view)
        _reply(body, respond, client, text)
