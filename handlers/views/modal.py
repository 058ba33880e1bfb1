"""The preregistration modal (R7) and the confirmation that replaces it on success."""

from __future__ import annotations

from typing import Any

from bot.i18n import _
from bot.models import PreregView
from handlers.mrkdwn import escape
from handlers.views.common import (
    STATUS_EMOJI,
    VALUE_ACTION,
    context,
    next_step,
    plain,
    review_why,
    section,
    status_label,
    when,
)

PREREGISTER_CALLBACK = "preregister"
FIELD_BLOCKS = ("full_name", "email", "mobile", "send_invitation")


def preregistration_modal() -> dict[str, Any]:
    def text_input(block_id: str, label: str, placeholder: str, hint: str) -> dict[str, Any]:
        return {
            "type": "input",
            "block_id": block_id,
            "label": plain(label, 2000),
            "hint": plain(hint, 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": VALUE_ACTION,
                "placeholder": plain(placeholder, 150),
                "max_length": 254,
            },
        }

    yes = {"text": plain(_("Yes, email the invitation link now")), "value": "yes"}
    no = {"text": plain(_("No, give me the link and a QR code to share")), "value": "no"}
    return {
        "type": "modal",
        "callback_id": PREREGISTER_CALLBACK,
        "title": plain(_("Preregister customer"), 24),
        "submit": plain(_("Preregister"), 24),
        "close": plain(_("Cancel"), 24),
        "blocks": [
            section(
                _(
                    "Claim a potential customer for your company. The claim lasts *15 days*. "
                    "Meanwhile no other partner can claim this customer."
                )
            ),
            text_input(
                "full_name", _("Full name"), _("Clara Customer"), _("The customer's full name.")
            ),
            text_input(
                "email",
                _("Email"),
                "clara@customer.example",
                _(
                    "The email the customer will use to sign up for the cloud account. "
                    "Plain letters and digits only (no accents)."
                ),
            ),
            text_input(
                "mobile",
                _("Mobile number"),
                "+49 1512 3456789",
                _("International format, with +."),
            ),
            {
                "type": "input",
                "block_id": "send_invitation",
                "label": plain(_("Send invitation link?")),
                "element": {
                    "type": "radio_buttons",
                    "action_id": VALUE_ACTION,
                    "options": [yes, no],
                    "initial_option": yes,
                },
            },
            context(_("Association type: *Reseller*.")),
        ],
    }


def confirmation_modal(p: PreregView) -> dict[str, Any]:
    """The modal after a successful submission: status, validity, what happens next."""
    facts = [
        _("*Customer:* {name} ({email})").format(name=escape(p.full_name), email=escape(p.email)),
        _("*Status:* {status}").format(
            status=f"{STATUS_EMOJI.get(p.status, '')} {status_label(p.status)}"
        ),
    ]
    if p.status == "preregistered" and p.expires_at is not None:
        facts.append(_("*Valid until:* {when}").format(when=when(p.expires_at)))
    if p.status == "under_review" and p.review_due_at is not None:
        facts.append(_("*Review due by:* {when}").format(when=when(p.review_due_at)))
    blocks = [section("\n".join(facts))]
    if p.status == "under_review" and review_why(p):
        blocks.append(context(review_why(p)))
    step = next_step(p)
    if step:
        blocks.append(section(_("*What happens next:* {step}").format(step=step)))
    blocks.append(context(_("See all your customers with `/preregister list`.")))
    title = _("Under review") if p.status == "under_review" else _("Customer preregistered")
    return {
        "type": "modal",
        "callback_id": "preregister_done",
        "title": plain(title, 24),
        "close": plain(_("Done"), 24),
        "blocks": blocks,
    }
