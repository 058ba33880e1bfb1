"""The preregistration modal (R7) and the confirmation that replaces it on success."""

from __future__ import annotations

from typing import Any

from bot.models import PreregView
from handlers.mrkdwn import escape
from handlers.views.common import (
    STATUS_EMOJI,
    VALUE_ACTION,
    context,
    next_step,
    plain,
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

    yes = {"text": plain("Yes, email the invitation link now"), "value": "yes"}
    no = {"text": plain("No, give me the link and a QR code to share"), "value": "no"}
    return {
        "type": "modal",
        "callback_id": PREREGISTER_CALLBACK,
        "title": plain("Preregister customer", 24),
        "submit": plain("Preregister", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(
                "Claim a potential customer for your company. The claim lasts *15 days*. "
                "Meanwhile no other partner can claim this customer."
            ),
            text_input("full_name", "Full name", "Clara Customer", "The customer's full name."),
            text_input(
                "email",
                "Email",
                "clara@customer.example",
                "The email the customer will use to sign up for the cloud account. "
                "Plain letters and digits only (no accents).",
            ),
            text_input(
                "mobile", "Mobile number", "+49 1512 3456789", "International format, with +."
            ),
            {
                "type": "input",
                "block_id": "send_invitation",
                "label": plain("Send invitation link?"),
                "element": {
                    "type": "radio_buttons",
                    "action_id": VALUE_ACTION,
                    "options": [yes, no],
                    "initial_option": yes,
                },
            },
            context("Association type: *Reseller*."),
        ],
    }


def confirmation_modal(p: PreregView) -> dict[str, Any]:
    """The modal after a successful submission: status, validity, what happens next."""
    facts = [
        f"*Customer:* {escape(p.full_name)} ({escape(p.email)})",
        f"*Status:* {STATUS_EMOJI.get(p.status, '')} {status_label(p.status)}",
    ]
    if p.status == "preregistered" and p.expires_at is not None:
        facts.append(f"*Valid until:* {when(p.expires_at)}")
    if p.status == "under_review" and p.review_due_at is not None:
        facts.append(f"*Review due by:* {when(p.review_due_at)}")
    blocks = [section("\n".join(facts))]
    if p.review_reason and p.status == "under_review":
        blocks.append(context(escape(p.review_reason)))
    step = next_step(p)
    if step:
        blocks.append(section(f"*What happens next:* {step}"))
    blocks.append(context("See all your customers with `/preregister list`."))
    title = "Under review" if p.status == "under_review" else "Customer preregistered"
    return {
        "type": "modal",
        "callback_id": "preregister_done",
        "title": plain(title, 24),
        "close": plain("Done", 24),
        "blocks": blocks,
    }
