"""Review (R3): the post in the manager channel, its decided form, the reject modal and the
outcome DM to the submitting partner member."""

from __future__ import annotations

from typing import Any

from bot.desk import Similar
from bot.models import PreregView
from handlers.mrkdwn import escape, format_when, mention
from handlers.views.common import (
    VALUE_ACTION,
    _review_why,
    button,
    context,
    header,
    md,
    next_step,
    plain,
    section,
    when,
)
from handlers.views.desk import (
    APPROVE_ACTION,
    REJECT_ACTION,
    desk_elements,
    reviewer_line,
    similar_blocks,
    waiting_blocks,
)

REJECT_CALLBACK = "review_reject"
__all__ = ["APPROVE_ACTION", "REJECT_ACTION", "REJECT_CALLBACK"]


def _review_facts(p: PreregView) -> dict[str, Any]:
    fields = [
        md(f"*Customer*\n{escape(p.full_name)}\n{escape(p.email)}"),
        md(f"*Partner*\n{escape(p.partner_name)} ({escape(p.partner_country)})"),
        md(f"*Submitted by*\n{mention(p.submitted_by)}"),
    ]
    if p.review_due_at is not None:
        fields.append(md(f"*Due by*\n{when(p.review_due_at)}"))
    return {"type": "section", "block_id": f"review_facts_{p.id}", "fields": fields}


def review_request_message(p: PreregView, similar: Similar | None = None) -> dict[str, Any]:
    """The post in the manager channel with Approve / Reject and the desk's buttons, similar
    requests at the customer's domain beside it; while the partner answers a question
    (action_required) the question instead of Approve / Reject."""
    if p.status == "action_required":
        return {
            "text": f"Sent back for information: {escape(p.full_name)} for "
            f"{escape(p.partner_name)}",
            "blocks": [
                header("Review waiting for the partner's answer"),
                _review_facts(p),
                section(f"*Why review:* {_review_why(p)}"),
                *waiting_blocks(p),
                *similar_blocks(similar, p.partner_name),
                context(reviewer_line(p)),
                {"type": "actions", "block_id": f"desk_{p.id}", "elements": desk_elements(p)},
            ],
        }
    return {
        "text": (
            f"Review needed: {escape(p.full_name)} for {escape(p.partner_name)}"
            + (f", due {format_when(p.review_due_at)}" if p.review_due_at else "")
        ),
        "blocks": [
            header("Review needed: customer preregistration"),
            _review_facts(p),
            section(f"*Why review:* {_review_why(p)}"),
            *([section(f"*Partner's answer:* {escape(p.info_answer)}")] if p.info_answer else []),
            *similar_blocks(similar, p.partner_name),
            context(reviewer_line(p)),
            {
                "type": "actions",
                "block_id": f"review_{p.id}",
                "elements": [
                    button("Approve", APPROVE_ACTION, str(p.id), style="primary"),
                    button("Reject", REJECT_ACTION, str(p.id), style="danger"),
                    *desk_elements(p),
                ],
            },
        ],
    }


def review_decided_message(p: PreregView) -> dict[str, Any]:
    """The same post after the decision: no buttons left, who decided and when."""
    verdict = {"rejected": "Rejected", "expired": "Expired"}.get(p.status, "Approved")
    emoji = {"Approved": ":white_check_mark:", "Rejected": ":no_entry:"}.get(verdict, ":hourglass:")
    by = mention(p.decided_by) if p.decided_by else "a manager"
    line = f"{emoji} *{verdict}* by {by}"
    if p.decided_at is not None:
        line += f" at {when(p.decided_at)}"
    if verdict == "Expired":
        line = f"{emoji} *Expired*: the partner did not answer the question in 5 working days."
    blocks = [
        header("Review decided: customer preregistration"),
        _review_facts(p),
        section(f"*Why review:* {_review_why(p)}"),
        section(line),
    ]
    if p.decision_reason:
        blocks.append(section(f"*Reason:* {escape(p.decision_reason)}"))
    return {
        "text": f"{verdict}: {escape(p.full_name)} for {escape(p.partner_name)}",
        "blocks": blocks,
    }


def review_outcome_dm(p: PreregView) -> dict[str, Any]:
    """What the submitting partner member is told."""
    who = f"{escape(p.full_name)} ({escape(p.email)})"
    if p.status == "rejected":
        text = f":no_entry: Your preregistration of {who} was rejected"
        text += f" by {mention(p.decided_by)}." if p.decided_by else "."
        blocks = [section(text)]
        if p.decision_reason:
            blocks.append(section(f"*Reason:* {escape(p.decision_reason)}"))
        return {"text": text, "blocks": blocks}
    text = f":white_check_mark: Your preregistration of {who} was approved"
    text += f" by {mention(p.decided_by)}." if p.decided_by else "."
    facts = []
    if p.expires_at is not None:
        facts.append(f"*Valid until:* {when(p.expires_at)}")
    step = next_step(p)
    if step:
        facts.append(f"*What happens next:* {step}")
    blocks = [section(text)] + ([section("\n".join(facts))] if facts else [])
    return {"text": text, "blocks": blocks}


def reject_modal(p: PreregView, private_metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain("Reject request", 24),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(
                f"Reject the preregistration of *{escape(p.full_name)}* ({escape(p.email)}) "
                f"for *{escape(p.partner_name)}*?"
            ),
            {
                "type": "input",
                "block_id": "reason",
                "label": plain("Reason"),
                "hint": plain("The partner sees this reason."),
                "element": {
                    "type": "plain_text_input",
                    "action_id": VALUE_ACTION,
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
    }
