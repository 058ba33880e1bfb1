"""The managers' desk in Block Kit: the send-back modal and the partner's resubmission, the
reviewer line and buttons of a review post, similar requests beside it, and the managers'
App Home (review queue and program overview). Customer names never appear beside another
partner's request: similar requests show masked addresses only (R11)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.desk import ProgramRow, Similar, SimilarRow
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
        return [context(f"Similar requests: not looked up ({domain} is a free-mail domain).")]
    if not similar.others and not similar.own:
        return [context(f"Similar requests at {domain}: none in the last 90 days.")]
    lines = [f"*Similar requests at {domain}* (live or last 90 days)"]
    if similar.others:
        lines.append("_Other partners:_")
        lines += [_similar_line(r) for r in similar.others]
    if similar.own:
        lines.append(f"_{escape(partner_name)}'s own history there:_")
        lines += [_similar_line(r) for r in similar.own]
    return [{"type": "section", "block_id": "similar", "text": md("\n".join(lines))}]


def reviewer_line(p: PreregView) -> str:
    return (
        f":bust_in_silhouette: {mention(p.reviewer)} is reviewing this."
        if p.reviewer
        else ":bust_in_silhouette: No one has taken this case yet."
    )


def desk_elements(p: PreregView) -> list[dict[str, Any]]:
    """Send back, take or release, reassign: the desk's buttons after Approve / Reject."""
    elements = []
    if p.status == "under_review":
        elements.append(button("Send back", SEND_BACK_ACTION, str(p.id)))
    if p.reviewer:
        elements.append(button("Release", RELEASE_ACTION, str(p.id)))
    else:
        elements.append(button("I'll review this", TAKE_ACTION, str(p.id)))
    elements.append(
        {
            "type": "users_select",
            "action_id": REASSIGN_ACTION,
            "placeholder": plain("Reassign to…", 150),
        }
    )
    return elements


def waiting_blocks(p: PreregView) -> list[dict[str, Any]]:
    """The review post while the partner answers a question (action_required)."""
    asked = mention(p.info_asked_by) if p.info_asked_by else "a manager"
    lines = [f":leftwards_arrow_with_hook: *Sent back for information* by {asked}"]
    if p.info_asked_at is not None:
        lines[0] += f" at {when(p.info_asked_at)}"
    lines.append(f"*Question:* {escape(p.info_question)}")
    if p.info_due_at is not None:
        lines.append(f"Expires unanswered {when(p.info_due_at)}; the review deadline is paused.")
    return [section("\n".join(lines))]


def approve_confirm_modal(p: PreregView, reviewer: str, private_metadata: str) -> dict[str, Any]:
    """Another manager has the case: approving asks to confirm first."""
    return {
        "type": "modal",
        "callback_id": APPROVE_CONFIRM_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain("Approve anyway?", 24),
        "submit": plain("Approve anyway", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(
                f":raised_hand: {mention(reviewer)} is reviewing the preregistration of "
                f"*{escape(p.full_name)}* for *{escape(p.partner_name)}*. Approve it anyway?"
            )
        ],
    }


def send_back_modal(p: PreregView, private_metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": SEND_BACK_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain("Send back", 24),
        "submit": plain("Send back", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(
                f"Send the preregistration of *{escape(p.full_name)}* for "
                f"*{escape(p.partner_name)}* back with a question? The customer stays claimed; "
                "the partner has 5 working days to answer."
            ),
            {
                "type": "input",
                "block_id": "question",
                "label": plain("Question for the partner"),
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
    asked = mention(p.info_asked_by) if p.info_asked_by else "An ecosystem manager"
    text = f":leftwards_arrow_with_hook: {asked} needs more information about {who}."
    lines = [text, f"*Question:* {escape(p.info_question)}"]
    if p.info_due_at is not None:
        lines.append(
            f"Answer by {when(p.info_due_at)}, or the preregistration expires. "
            "The customer stays claimed for you meanwhile."
        )
    return {
        "text": text,
        "blocks": [
            section("\n".join(lines)),
            {
                "type": "actions",
                "block_id": f"info_{p.id}",
                "elements": [
                    button("Edit and resubmit", RESUBMIT_ACTION, str(p.id), style="primary")
                ],
            },
        ],
    }


def info_reminder_dm(p: PreregView) -> dict[str, Any]:
    due = when(p.info_due_at) if p.info_due_at else "tomorrow"
    text = (
        f":alarm_clock: Reminder: the question about {escape(p.full_name)} ({escape(p.email)}) "
        f"is still unanswered; the preregistration expires {due}."
    )
    message = info_request_dm(p)
    return {"text": text, "blocks": [section(text), *message["blocks"][1:]]}


def info_expired_dm(p: PreregView) -> dict[str, Any]:
    text = (
        f":hourglass: The preregistration of {escape(p.full_name)} ({escape(p.email)}) expired: "
        "the manager's question went unanswered for 5 working days. The customer is free again."
    )
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
        "title": plain("Edit and resubmit", 24),
        "submit": plain("Resubmit", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(f"*Question from the ecosystem manager:* {escape(p.info_question)}"),
            {
                "type": "input",
                "block_id": "answer",
                "label": plain("Your answer"),
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
        "title": plain("Resubmitted", 24),
        "close": plain("Done", 24),
        "blocks": [
            section(
                f"{escape(p.full_name)} ({escape(p.email)}) is back *under review*, due by "
                f"{when(p.review_due_at) if p.review_due_at else 'two working days from now'}."
            )
        ],
    }


def answer_in_thread(p: PreregView) -> dict[str, Any]:
    text = f":speech_balloon: {mention(p.submitted_by)} answered: {escape(p.info_answer)}"
    return {"text": text, "blocks": [section(text)]}


# --- the managers' App Home -----------------------------------------------------------------


def _queue_item(p: PreregView, now: datetime) -> list[dict[str, Any]]:
    mark = ""
    if p.review_due_at is not None:
        if p.review_due_at <= now:
            mark = " · :red_circle: *overdue*"
        elif (p.review_due_at - now).total_seconds() <= 24 * 3600:
            mark = " · :large_orange_circle: *due soon*"
    due = f" · due {when(p.review_due_at)}" if p.review_due_at else ""
    who = f" · {mention(p.reviewer)} has it" if p.reviewer else ""
    return [
        section(
            f"*{escape(truncate(p.full_name, 80))}* ({escape(p.email)}) for "
            f"*{escape(p.partner_name)}*\nSubmitted {when(p.submitted_at)}{due}{mark}{who}",
            block_id=f"queue_{p.id}",
        ),
        {
            "type": "actions",
            "block_id": f"queue_actions_{p.id}",
            "elements": [
                button("Approve", APPROVE_ACTION, str(p.id), style="primary"),
                button("Reject", REJECT_ACTION, str(p.id), style="danger"),
                button("Send back", SEND_BACK_ACTION, str(p.id)),
                *([] if p.reviewer else [button("I'll review this", TAKE_ACTION, str(p.id))]),
            ],
        },
    ]


def _program_row(r: ProgramRow) -> dict[str, Any]:
    counts = " · ".join(
        f"{STATUS_LABELS[s]} {r.counts[s]}" for s in STATUS_LABELS if r.counts.get(s)
    )
    last = when(r.last_activity) if r.last_activity else "none"
    return section(
        f"*{escape(r.name)}* ({escape(r.country)}) · quota {r.quota_used} / {r.quota_limit}\n"
        f"{counts or 'No requests yet.'}\nLast activity: {last}",
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
    blocks: list[dict[str, Any]] = [header("Review queue")]
    if not queue:
        blocks.append(section("No requests are waiting for review."))
    else:
        blocks.append(context(f"{queue_total} waiting, oldest first."))
        for p in queue[:HOME_QUEUE_ITEMS]:
            blocks.extend(_queue_item(p, now))
        if queue_total > HOME_QUEUE_ITEMS:
            blocks.append(context(f"…and {queue_total - HOME_QUEUE_ITEMS} more in the channel."))
    blocks.append(divider())
    blocks.append(header("Program"))
    other = "name" if sort == "quota" else "quota"
    blocks.append(
        {
            "type": "actions",
            "block_id": "program_sort",
            "elements": [
                button(
                    f"Sort by {'quota use' if other == 'quota' else 'name'}",
                    HOME_SORT_ACTION,
                    json.dumps({"p": 0, "s": other}),
                )
            ],
        }
    )
    shown_from = page * page_size
    blocks.append(
        context(
            f"{program_total} partners, sorted by {'quota use' if sort == 'quota' else 'name'}"
            + (f"; {shown_from + 1}–{shown_from + len(program)}" if program else "")
            + "."
        )
    )
    blocks.extend(_program_row(r) for r in program)
    nav = []
    if page > 0:
        nav.append(button("Previous", HOME_PAGE_ACTION, json.dumps({"p": page - 1, "s": sort})))
    if shown_from + len(program) < program_total:
        nav.append(button("Next", HOME_PAGE_ACTION, json.dumps({"p": page + 1, "s": sort})))
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
