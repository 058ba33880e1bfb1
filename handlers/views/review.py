"""Review (R3): the post in the manager channel, its decided form, the reject modal and the
outcome DM to the submitting partner member."""

from __future__ import annotations

from typing import Any

from bot.desk import Similar
from bot.i18n import _
from bot.models import PreregView
from handlers.mrkdwn import escape, format_when, mention
from handlers.views.common import (
    VALUE_ACTION,
    context,
    header,
    md,
    next_step,
    plain,
    review_why,
    section,
    when,
)
from handlers.views.desk import (
    APPROVE_ACTION,
    REJECT_ACTION,
    decision_buttons,
    desk_elements,
    reviewer_line,
    similar_blocks,
    waiting_blocks,
)

REJECT_CALLBACK = "review_reject"
__all__ = ["APPROVE_ACTION", "REJECT_ACTION", "REJECT_CALLBACK"]


def _b(label: str) -> str:
    """A label in bold (mrkdwn); the label stays a whole msgid, the markup outside it."""
    return f"*{label}*"


def _review_facts(p: PreregView) -> dict[str, Any]:
    fields = [
        md(_b(_("Customer")) + f"\n{escape(p.full_name)}\n{escape(p.email)}"),
        md(_b(_("Partner")) + f"\n{escape(p.partner_name)} ({escape(p.partner_country)})"),
        md(_b(_("Submitted by")) + f"\n{mention(p.submitted_by)}"),
    ]
    if p.review_due_at is not None:
        fields.append(md(_b(_("Due by")) + f"\n{when(p.review_due_at)}"))
    return {"type": "section", "block_id": f"review_facts_{p.id}", "fields": fields}


def review_request_message(p: PreregView, similar: Similar | None = None) -> dict[str, Any]:
    """The post in the manager channel with Approve / Reject and the desk's buttons, similar
    requests at the customer's domain beside it; while the partner answers a question
    (action_required) the question instead of Approve / Reject."""
    if p.status == "action_required":
        return {
            "text": _("Sent back for information: {customer} for {partner}").format(
                customer=escape(p.full_name), partner=escape(p.partner_name)
            ),
            "blocks": [
                header(_("Review waiting for the partner's answer")),
                _review_facts(p),
                _why(p),
                *waiting_blocks(p),
                *similar_blocks(similar, p.partner_name),
                context(reviewer_line(p)),
                {"type": "actions", "block_id": f"desk_{p.id}", "elements": desk_elements(p)},
            ],
        }
    return {
        "text": (
            _("Review needed: {customer} for {partner}, due {when}")
            if p.review_due_at
            else _("Review needed: {customer} for {partner}")
        ).format(
            customer=escape(p.full_name),
            partner=escape(p.partner_name),
            when=format_when(p.review_due_at) if p.review_due_at else "",
        ),
        "blocks": [
            header(_("Review needed: customer preregistration")),
            _review_facts(p),
            _why(p),
            *(
                [section(_b(_("Partner's answer:")) + f" {escape(p.info_answer)}")]
                if p.info_answer
                else []
            ),
            *similar_blocks(similar, p.partner_name),
            context(reviewer_line(p)),
            {
                "type": "actions",
                "block_id": f"review_{p.id}",
                "elements": [
                    *decision_buttons(p),
                    *desk_elements(p),
                ],
            },
        ],
    }


def review_decided_message(p: PreregView) -> dict[str, Any]:
    """The same post after the decision: no buttons left, who decided and when."""
    verdict = {"rejected": "rejected", "expired": "expired"}.get(p.status, "approved")
    emoji = {"approved": ":white_check_mark:", "rejected": ":no_entry:"}.get(verdict, ":hourglass:")
    by = mention(p.decided_by) if p.decided_by else _("a manager")
    at = when(p.decided_at) if p.decided_at is not None else None
    if verdict == "expired":
        line = _("*Expired*: the partner did not answer the question in 5 working days.")
    elif verdict == "rejected":
        line = (_("*Rejected* by {by} at {at}") if at else _("*Rejected* by {by}")).format(
            by=by, at=at
        )
    else:
        line = (_("*Approved* by {by} at {at}") if at else _("*Approved* by {by}")).format(
            by=by, at=at
        )
    blocks = [
        header(_("Review decided: customer preregistration")),
        _review_facts(p),
        _why(p),
        section(f"{emoji} {line}"),
    ]
    if p.decision_reason:
        blocks.append(_reason(p.decision_reason))
    title = {"rejected": _("Rejected"), "expired": _("Expired")}.get(verdict, _("Approved"))
    return {
        "text": _("{verdict}: {customer} for {partner}").format(
            verdict=title, customer=escape(p.full_name), partner=escape(p.partner_name)
        ),
        "blocks": blocks,
    }


def _why(p: PreregView) -> dict[str, Any]:
    return section(_b(_("Why review:")) + f" {review_why(p)}")


def _reason(reason: str) -> dict[str, Any]:
    return section(_b(_("Reason:")) + f" {escape(reason)}")


def review_outcome_dm(p: PreregView) -> dict[str, Any]:
    """What the submitting partner member is told."""
    who = f"{escape(p.full_name)} ({escape(p.email)})"
    by = mention(p.decided_by) if p.decided_by else None
    if p.status == "rejected":
        said = (
            _("Your preregistration of {customer} was rejected by {by}.")
            if by
            else _("Your preregistration of {customer} was rejected.")
        )
        text = ":no_entry: " + said.format(customer=who, by=by)
        blocks = [section(text)]
        if p.decision_reason:
            blocks.append(_reason(p.decision_reason))
        return {"text": text, "blocks": blocks}
    said = (
        _("Your preregistration of {customer} was approved by {by}.")
        if by
        else _("Your preregistration of {customer} was approved.")
    )
    text = ":white_check_mark: " + said.format(customer=who, by=by)
    facts = []
    if p.expires_at is not None:
        facts.append(_b(_("Valid until:")) + f" {when(p.expires_at)}")
    step = next_step(p)
    if step:
        facts.append(_b(_("What happens next:")) + f" {step}")
    blocks = [section(text)] + ([section("\n".join(facts))] if facts else [])
    return {"text": text, "blocks": blocks}


def reject_modal(p: PreregView, private_metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain(_("Reject request"), 24),
        "submit": plain(_("Reject"), 24),
        "close": plain(_("Cancel"), 24),
        "blocks": [
            section(
                _("Reject the preregistration of *{customer}* ({email}) for *{partner}*?").format(
                    customer=escape(p.full_name),
                    email=escape(p.email),
                    partner=escape(p.partner_name),
                )
            ),
            {
                "type": "input",
                "block_id": "reason",
                "label": plain(_("Reason")),
                "hint": plain(_("The partner sees this reason.")),
                "element": {
                    "type": "plain_text_input",
                    "action_id": VALUE_ACTION,
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
    }
