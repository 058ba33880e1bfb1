"""What every surface shares: the Block Kit primitives, status words, manager contacts, and the
ephemeral, refusal and error replies.

Nothing here talks to Slack or the database. Every user-typed string goes through `escape`
(mrkdwn) or is put into a plain_text object, so a customer named `<!channel>` pings no one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.i18n import _
from bot.models import PreregView
from bot.rules import STATUS_WORDS
from handlers.mrkdwn import escape, format_date, format_when, mention, truncate

VALUE_ACTION = "value"

STATUS_LABELS = STATUS_WORDS  # the statuses in their order, as people say them
STATUS_EMOJI = {
    "under_review": ":hourglass_flowing_sand:",
    "action_required": ":leftwards_arrow_with_hook:",
    "preregistered": ":white_check_mark:",
    "associated": ":handshake:",
    "rejected": ":no_entry:",
    "expired": ":calendar:",
    "deleted": ":wastebasket:",
}


# --- small pieces -----------------------------------------------------------------------------


def plain(text: str, limit: int = 3000) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def md(text: str, limit: int = 3000) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": md(text), **extra}


def context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [md(t) for t in texts]}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": plain(text, 150)}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def button(
    text: str,
    action_id: str,
    value: str,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """`label`: what a screen reader says where the text alone is not enough ("Delete" ->
    "Delete Anna Schmidt")."""
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(text, 75),
        "action_id": action_id,
        "value": value,
    }
    if label:
        element["accessibility_label"] = truncate(label, 75)
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def when(at: datetime) -> str:
    """A time every reader sees in their own zone (Slack's date token), UTC text as fallback."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{format_when(at)}>"


def day(at: datetime) -> str:
    return f"<!date^{int(at.timestamp())}^{{date_long}}|{format_date(at)}>"


def status_label(status: str) -> str:
    label = STATUS_LABELS.get(status)
    return _(label) if label else status.replace("_", " ").capitalize()


def contact_lines(contacts: Sequence[tuple[str, str | None]]) -> str:
    """R13: who to ask, as mrkdwn."""
    if not contacts:
        return ":busts_in_silhouette: " + _(
            "Need help? No ecosystem manager is registered yet. Ask the person who installed "
            "prereg-bot."
        )
    people = ", ".join(
        mention(user) + (f" ({escape(email)})" if email else "") for user, email in contacts[:5]
    )
    return ":busts_in_silhouette: " + _("Need help? Your ecosystem manager: {people}").format(
        people=people
    )


def contact_plain(contacts: Sequence[tuple[str, str | None]]) -> str:
    """R13 for plain-text places (modal field errors): emails only, mentions do not render."""
    emails = [email for _, email in contacts if email]
    if not emails:
        return _("Questions? Ask your ecosystem manager.")
    return _("Questions? Ecosystem manager: {emails}").format(emails=", ".join(emails[:3]))


def ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A response_url body visible only to the person who asked."""
    return {
        "response_type": "ephemeral",
        "text": text,
        "blocks": blocks or [section(text)],
    }


def refusal_message(cause: str, contacts: Sequence[tuple[str, str | None]]) -> dict[str, Any]:
    """A refusal in words plus who can help (R13). `cause` is our own text, escaped anyway."""
    text = f":warning: {escape(cause)}"
    return ephemeral(text, [section(text), context(contact_lines(contacts))])


# --- shared by more than one surface ----------------------------------------------------------


def next_step(p: PreregView) -> str:
    if p.status == "under_review":
        return _(
            "An ecosystem manager reviews it first, because the customer is in another country "
            "than your company. You'll get a DM with the decision."
        )
    if p.status == "action_required":
        return _("An ecosystem manager asked a question: answer it with *Edit and resubmit*.")
    if p.status != "preregistered":
        return ""
    if p.invited_at is not None:
        return _("The invitation has gone out.")
    if p.send_invitation:
        return _("The invitation email is being sent to {email}.").format(email=escape(p.email))
    return _("You'll get the invitation link and QR code in a DM to share with the customer.")


def queue_case(p: PreregView) -> str:
    """A case in a review queue: who, for which partner, when submitted and when due."""
    case = _("*{customer}* ({email}) for *{partner}*").format(
        customer=escape(truncate(p.full_name, 80)),
        email=escape(p.email),
        partner=escape(p.partner_name),
    )
    submitted = _("Submitted {when}").format(when=when(p.submitted_at))
    due = " · " + _("due {when}").format(when=when(p.review_due_at)) if p.review_due_at else ""
    return f"{case}\n{submitted}{due}"


def review_why(p: PreregView) -> str:
    """Why review, in the reader's language: the stored reason is the English of the same
    fact (countries differ), so it is only shown when the countries are not known."""
    if p.customer_country and p.partner_country:
        return escape(
            _(
                "The customer's country ({customer}) differs from the partner's business "
                "country ({partner})."
            ).format(customer=p.customer_country, partner=p.partner_country)
        )
    return escape(p.review_reason or "")


# --- errors (handlers/errors.py) --------------------------------------------------------------


def error_message() -> dict[str, Any]:
    text = ":warning: " + _("Something went wrong on our side. Please try again in a moment.")
    return ephemeral(text)


def error_modal() -> dict[str, Any]:
    return {
        "type": "modal",
        "title": plain(_("Something went wrong"), 24),
        "close": plain(_("Close"), 24),
        "blocks": [
            section(
                ":warning: "
                + _(
                    "Something went wrong on our side. Please try again in a moment. "
                    "`/preregister list` shows whether your request went through."
                )
            )
        ],
    }
