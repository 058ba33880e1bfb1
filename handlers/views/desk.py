"""The managers' desk in Block Kit: the send-back modal and the partner's resubmission, the
reviewer line and buttons of a review post, similar requests beside it, and the managers'
App Home (review queue and program overview). Customer names never appear beside another
partner's request: similar requests show masked addresses only (R11)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from bot.desk import ProgramRow, Similar, SimilarRow, review_urgency
from bot.i18n import _, ngettext, per_language
from bot.models import PreregView
from handlers.mrkdwn import escape, mention, truncate
from handlers.views.common import (
    STATUS_EMOJI,
    STATUS_LABELS,
    VALUE_ACTION,
    button,
    context,
    divider,
    header,
    md,
    plain,
    queue_case,
    section,
    status_label,
    when,
)
from handlers.views.customers import mask_email
from handlers.views.modal import preregistration_modal

APPROVE_ACTION = "review_approve"
REJECT_ACTION = "review_reject"
SEND_BACK_ACTION = "review_send_back"
SEND_BACK_CALLBACK = "review_send_back"
TAKE_ACTION = "review_take"
RELEASE_ACTION = "review_release"
REASSIGN_ACTION = "review_reassign"
APPROVE_CONFIRM_CALLBACK = "review_approve_confirm"
RESUBMIT_ACTION = "info_resubmit"
RESUBMIT_CALLBACK = "info_resubmit"
HOME_PAGE_ACTION = "desk_home_page"
HOME_SORT_ACTION = "desk_home_sort"
HOME_BLOCK_LIMIT = 100
HOME_QUEUE_ITEMS = 15
QUEUE_HEADER_BLOCK = "review_queue"  # found by handlers/home.py in any language


def _b(label: str) -> str:
    return f"*{label}*"


# --- beside each review ---------------------------------------------------------------------


def _similar_line(r: SimilarRow) -> str:
    who = "" if r.own_partner else f"*{escape(r.partner_name)}* · "
    return (
        f"• {who}{STATUS_EMOJI.get(r.status, '')} {status_label(r.status)} · "
        f"{mask_email(escape(r.email))} · {when(r.submitted_at)}"
    )


def similar_blocks(similar: Similar | None, partner_name: str) -> list[dict[str, Any]]:
    """Other partners' live or recent requests at the domain, then this partner's own."""
    if similar is None:
        return []
    domain = escape(similar.domain)
    if similar.free_mail:
        return [
            context(
                _("Similar requests: not looked up ({domain} is a free-mail domain).").format(
                    domain=domain
                )
            )
        ]
    if not similar.others and not similar.own:
        return [
            context(
                _("Similar requests at {domain}: none in the last 90 days.").format(domain=domain)
            )
        ]
    lines = [_("*Similar requests at {domain}* (live or last 90 days)").format(domain=domain)]
    if similar.others:
        lines.append("_" + _("Other partners:") + "_")
        lines += [_similar_line(r) for r in similar.others]
    if similar.own:
        lines.append(
            "_" + _("{partner}'s own history there:").format(partner=escape(partner_name)) + "_"
        )
        lines += [_similar_line(r) for r in similar.own]
    return [{"type": "section", "block_id": "similar", "text": md("\n".join(lines))}]


def reviewer_line(p: PreregView) -> str:
    return ":bust_in_silhouette: " + (
        _("{reviewer} is reviewing this.").format(reviewer=mention(p.reviewer))
        if p.reviewer
        else _("No one has taken this case yet.")
    )


def _for(p: PreregView) -> dict[str, str]:
    """What a screen reader names a review button's object by: the customer and partner."""
    return {"customer": truncate(p.full_name, 40), "partner": truncate(p.partner_name, 30)}


def decision_buttons(p: PreregView) -> list[dict[str, Any]]:
    """Approve and Reject, each labelled with the request it decides."""
    return [
        button(_("Approve"), APPROVE_ACTION, str(p.id), style="primary",
               label=_("Approve {customer} for {partner}").format(**_for(p))),
        button(_("Reject"), REJECT_ACTION, str(p.id), style="danger",
               label=_("Reject {customer} for {partner}").format(**_for(p))),
    ]  # fmt: skip


def _send_back(p: PreregView) -> dict[str, Any]:
    label = _("Send {customer} back to {partner} with a question").format(**_for(p))
    return button(_("Send back"), SEND_BACK_ACTION, str(p.id), label=label)


def _take(p: PreregView) -> dict[str, Any]:
    label = _("Take the review of {customer} for {partner}").format(**_for(p))
    return button(_("I'll review this"), TAKE_ACTION, str(p.id), label=label)


def desk_elements(p: PreregView) -> list[dict[str, Any]]:
    """Send back, take or release, reassign: the desk's buttons after Approve / Reject."""
    elements = []
    if p.status == "under_review":
        elements.append(_send_back(p))
    if p.reviewer:
        elements.append(
            button(_("Release"), RELEASE_ACTION, str(p.id),
                   label=_("Release the review of {customer} for {partner}").format(**_for(p)))
        )  # fmt: skip
    else:
        elements.append(_take(p))
    elements.append(
        {
            "type": "users_select",
            "action_id": REASSIGN_ACTION,
            "placeholder": plain(_("Reassign to…"), 150),
        }
    )
    return elements


def waiting_blocks(p: PreregView) -> list[dict[str, Any]]:
    """The review post while the partner answers a question (action_required)."""
    asked = mention(p.info_asked_by) if p.info_asked_by else _("a manager")
    said = (
        _("*Sent back for information* by {by} at {at}")
        if p.info_asked_at is not None
        else _("*Sent back for information* by {by}")
    )
    at = when(p.info_asked_at) if p.info_asked_at is not None else None
    lines = [":leftwards_arrow_with_hook: " + said.format(by=asked, at=at)]
    lines.append(_b(_("Question:")) + f" {escape(p.info_question)}")
    if p.info_due_at is not None:
        lines.append(
            _("Expires unanswered {when}; the review deadline is paused.").format(
                when=when(p.info_due_at)
            )
        )
    return [section("\n".join(lines))]


def approve_confirm_modal(p: PreregView, reviewer: str, private_metadata: str) -> dict[str, Any]:
    """Another manager has the case: approving asks to confirm first."""
    return {
        "type": "modal",
        "callback_id": APPROVE_CONFIRM_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain(_("Approve anyway?"), 24),
        "submit": plain(_("Approve anyway"), 24),
        "close": plain(_("Cancel"), 24),
        "blocks": [
            section(
                ":raised_hand: "
                + _(
                    "{reviewer} is reviewing the preregistration of *{customer}* for "
                    "*{partner}*. Approve it anyway?"
                ).format(
                    reviewer=mention(reviewer),
                    customer=escape(p.full_name),
                    partner=escape(p.partner_name),
                )
            )
        ],
    }


def send_back_modal(p: PreregView, private_metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": SEND_BACK_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain(_("Send back"), 24),
        "submit": plain(_("Send back"), 24),
        "close": plain(_("Cancel"), 24),
        "blocks": [
            section(
                _(
                    "Send the preregistration of *{customer}* for *{partner}* back with a "
                    "question? The customer stays claimed; the partner has 5 working days to "
                    "answer."
                ).format(customer=escape(p.full_name), partner=escape(p.partner_name))
            ),
            {
                "type": "input",
                "block_id": "question",
                "label": plain(_("Question for the partner")),
                "element": {
                    "type": "plain_text_input",
                    "action_id": VALUE_ACTION,
                    "multiline": True,
                    "max_length": 1000,
                },
            },
        ],
    }


# --- the partner's side ---------------------------------------------------------------------


def info_request_dm(p: PreregView) -> dict[str, Any]:
    who = f"{escape(p.full_name)} ({escape(p.email)})"
    asked = mention(p.info_asked_by) if p.info_asked_by else _("An ecosystem manager")
    text = ":leftwards_arrow_with_hook: " + _(
        "{asked} needs more information about {customer}."
    ).format(asked=asked, customer=who)
    lines = [text, _b(_("Question:")) + f" {escape(p.info_question)}"]
    if p.info_due_at is not None:
        lines.append(
            _(
                "Answer by {when}, or the preregistration expires. The customer stays claimed "
                "for you meanwhile."
            ).format(when=when(p.info_due_at))
        )
    return {
        "text": text,
        "blocks": [
            section("\n".join(lines)),
            {
                "type": "actions",
                "block_id": f"info_{p.id}",
                "elements": [
                    button(
                        _("Edit and resubmit"),
                        RESUBMIT_ACTION,
                        str(p.id),
                        style="primary",
                        label=_("Edit and resubmit {customer}").format(**_for(p)),
                    )
                ],
            },
        ],
    }


def info_reminder_dm(p: PreregView) -> dict[str, Any]:
    said = (
        _(
            "Reminder: the question about {customer} is still unanswered; the preregistration "
            "expires {when}."
        )
        if p.info_due_at
        else _(
            "Reminder: the question about {customer} is still unanswered; the preregistration "
            "expires tomorrow."
        )
    )
    text = ":alarm_clock: " + said.format(
        customer=f"{escape(p.full_name)} ({escape(p.email)})",
        when=when(p.info_due_at) if p.info_due_at else "",
    )
    message = info_request_dm(p)
    return {"text": text, "blocks": [section(text), *message["blocks"][1:]]}


def info_expired_dm(p: PreregView) -> dict[str, Any]:
    text = ":hourglass: " + _(
        "The preregistration of {customer} expired: the manager's question went unanswered "
        "for 5 working days. The customer is free again."
    ).format(customer=f"{escape(p.full_name)} ({escape(p.email)})")
    return {"text": text, "blocks": [section(text)]}


def resubmit_modal(p: PreregView, private_metadata: str) -> dict[str, Any]:
    """The preregistration form filled in as submitted, with the question and an answer box."""
    view = preregistration_modal()
    values = {"full_name": p.full_name, "email": p.email, "mobile": p.mobile}
    blocks = []
    for block in view["blocks"][1:]:
        block = json.loads(json.dumps(block))
        if block.get("block_id") in values:
            block["element"]["initial_value"] = values[block["block_id"]]
        if block.get("block_id") == "send_invitation" and not p.send_invitation:
            block["element"]["initial_option"] = block["element"]["options"][1]
        blocks.append(block)
    return {
        "type": "modal",
        "callback_id": RESUBMIT_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain(_("Edit and resubmit"), 24),
        "submit": plain(_("Resubmit"), 24),
        "close": plain(_("Cancel"), 24),
        "blocks": [
            section(_b(_("Question from the ecosystem manager:")) + f" {escape(p.info_question)}"),
            {
                "type": "input",
                "block_id": "answer",
                "label": plain(_("Your answer")),
                "element": {
                    "type": "plain_text_input",
                    "action_id": VALUE_ACTION,
                    "multiline": True,
                    "max_length": 1000,
                },
            },
            *blocks,
        ],
    }


def resubmitted_modal(p: PreregView) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "info_resubmitted",
        "title": plain(_("Resubmitted"), 24),
        "close": plain(_("Done"), 24),
        "blocks": [
            section(
                (
                    _("{customer} is back *under review*, due by {when}.")
                    if p.review_due_at
                    else _("{customer} is back *under review*, due two working days from now.")
                ).format(
                    customer=f"{escape(p.full_name)} ({escape(p.email)})",
                    when=when(p.review_due_at) if p.review_due_at else "",
                )
            )
        ],
    }


def answer_in_thread(p: PreregView) -> dict[str, Any]:
    text = ":speech_balloon: " + _("{partner} answered: {answer}").format(
        partner=mention(p.submitted_by), answer=escape(p.info_answer)
    )
    return {"text": text, "blocks": [section(text)]}


# --- the managers' App Home -----------------------------------------------------------------


def _queue_item(p: PreregView, now: datetime) -> list[dict[str, Any]]:
    mark = {
        "overdue": " · :red_circle: " + _b(_("overdue")),
        "due_soon": " · :large_orange_circle: " + _b(_("due soon")),
    }.get(review_urgency(p.review_due_at, now) or "", "")
    who = " · " + _("{reviewer} has it").format(reviewer=mention(p.reviewer)) if p.reviewer else ""
    case = queue_case(p)
    return [
        section(f"{case}{mark}{who}", block_id=f"queue_{p.id}"),
        {
            "type": "actions",
            "block_id": f"queue_actions_{p.id}",
            "elements": [
                *decision_buttons(p),
                _send_back(p),
                *([] if p.reviewer else [_take(p)]),
            ],
        },
    ]


class _ProgramTexts(NamedTuple):
    """What a program row says that does not change from row to row, in one language."""

    statuses: tuple[tuple[str, str], ...]
    none: str
    quota: str
    no_requests: str
    last_activity: str


@per_language
def _program_texts() -> _ProgramTexts:
    """Built once per language (bot/i18n.py `per_language`): a page of ~60 partners asked the
    catalogs ~270 times."""
    return _ProgramTexts(
        statuses=tuple((s, status_label(s)) for s in STATUS_LABELS),
        none=_("none"),
        quota=_("quota {used} / {limit}"),
        no_requests=_("No requests yet."),
        last_activity=_("Last activity: {when}"),
    )


def _program_row(r: ProgramRow, texts: _ProgramTexts) -> dict[str, Any]:
    counts = " · ".join(f"{label} {r.counts[s]}" for s, label in texts.statuses if r.counts.get(s))
    last = when(r.last_activity) if r.last_activity else texts.none
    quota = texts.quota.format(used=r.quota_used, limit=r.quota_limit)
    counts = counts or texts.no_requests
    return section(
        f"*{escape(r.name)}* ({escape(r.country)}) · {quota}\n{counts}\n"
        + texts.last_activity.format(when=last),
        block_id=f"program_{r.partner_id}",
    )


def manager_home_blocks(
    queue: Sequence[PreregView],
    queue_total: int,
    program: Sequence[ProgramRow],
    program_total: int,
    page: int,
    page_size: int,
    sort: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """The review queue (oldest first, with the buttons), then one page of the program."""
    blocks: list[dict[str, Any]] = [{**header(_("Review queue")), "block_id": QUEUE_HEADER_BLOCK}]
    if not queue:
        blocks.append(section(_("No requests are waiting for review.")))
    else:
        blocks.append(context(_("{n} waiting, oldest first.").format(n=queue_total)))
        for p in queue[:HOME_QUEUE_ITEMS]:
            blocks.extend(_queue_item(p, now))
        if queue_total > HOME_QUEUE_ITEMS:
            more = queue_total - HOME_QUEUE_ITEMS
            blocks.append(context(_("…and {n} more in the channel.").format(n=more)))
    blocks.append(divider())
    blocks.append(header(_("Program")))
    other = "name" if sort == "quota" else "quota"
    blocks.append(
        {
            "type": "actions",
            "block_id": "program_sort",
            "elements": [
                button(
                    _("Sort by quota use") if other == "quota" else _("Sort by name"),
                    HOME_SORT_ACTION,
                    json.dumps({"p": 0, "s": other}),
                )
            ],
        }
    )
    shown_from = page * page_size
    sorted_by = (
        ngettext(
            "{n} partner, sorted by quota use", "{n} partners, sorted by quota use", program_total
        )
        if sort == "quota"
        else ngettext("{n} partner, sorted by name", "{n} partners, sorted by name", program_total)
    ).format(n=program_total)
    shown = f"; {shown_from + 1}–{shown_from + len(program)}" if program else ""
    blocks.append(context(_("{sorted}{shown}.").format(sorted=sorted_by, shown=shown)))
    texts = _program_texts()
    blocks.extend(_program_row(r, texts) for r in program)
    nav = []
    if page > 0:
        nav.append(
            button(_("Previous"), HOME_PAGE_ACTION, json.dumps({"p": page - 1, "s": sort}),
                   label=_("Previous page of the partner program"))
        )  # fmt: skip
    if shown_from + len(program) < program_total:
        nav.append(
            button(_("Next"), HOME_PAGE_ACTION, json.dumps({"p": page + 1, "s": sort}),
                   label=_("Next page of the partner program"))
        )  # fmt: skip
    if nav:
        blocks.append({"type": "actions", "block_id": "program_pages", "elements": nav})
    return blocks


def queue_blocks_used(queue_len: int, queue_total: int) -> int:
    """Blocks the queue part of manager_home_blocks takes (to size the program page)."""
    shown = min(queue_len, HOME_QUEUE_ITEMS)
    return 2 + 2 * shown + (1 if queue_total > HOME_QUEUE_ITEMS else 0)


def home_page_state(value: str | None) -> tuple[int, str]:
    try:
        state = json.loads(value or "{}")
        page = max(0, int(state.get("p", 0)))
        sort = "name" if state.get("s") == "name" else "quota"
    except (ValueError, TypeError, AttributeError):
        return 0, "quota"
    return page, sort
