"""Onboarding a partner's workspace (distributed mode, issue 14): App Home's link button and
"Who may preregister", the link request modal, the request post in the manager channel with
its decided form, the reject modal and the DM to the requester. Pure builders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.identity import user_id_of
from bot.workspaces import LinkRequestView, Onboarding, PolicySaved
from handlers.mrkdwn import escape, mention, truncate
from handlers.views.common import (
    VALUE_ACTION,
    button,
    context,
    header,
    md,
    plain,
    section,
    when,
)

LINK_OPEN_ACTION = "link_open"
LINK_CALLBACK = "link_request"
LINK_APPROVE_ACTION = "link_approve"
LINK_REJECT_ACTION = "link_reject"
LINK_PICK_ACTION = "link_pick_partner"
LINK_REJECT_CALLBACK = "link_reject"
POLICY_SAVE_ACTION = "policy_save"
POLICY_MODE_BLOCK = "policy_mode"
POLICY_PICKED_BLOCK = "policy_picked"
EVERYONE, PICKED = "everyone", "picked"
LINK_FIELDS = ("name", "country", "contact_email", "contact_mobile")
"""The modal's block ids: the same names as the validation's error keys."""


# --- App Home -------------------------------------------------------------------------------


def onboarding_blocks(state: Onboarding, notice: str | None = None) -> list[dict[str, Any]]:
    """What App Home shows about the viewer's workspace; nothing for a linked workspace's
    people who are not its admins."""
    blocks: list[dict[str, Any]] = [section(notice)] if notice else []
    workspace = state.workspace
    if workspace.partner_id is None:
        return blocks + _unlinked(state)
    if state.is_admin:
        return blocks + _policy(state)
    return blocks


def _unlinked(state: Onboarding) -> list[dict[str, Any]]:
    blocks = [header("Set up prereg-bot for your company")]
    if state.pending is not None:
        blocks.append(
            section(
                f":hourglass_flowing_sand: A request to link this workspace to "
                f"*{escape(state.pending.company_name)}* is waiting for an ecosystem manager. "
                "The requester gets a DM when it is decided."
            )
        )
        return blocks
    if state.is_admin:
        blocks.append(
            section(
                "This workspace is not linked to a partner yet, so no one here can preregister "
                "customers. Link it to your company: an ecosystem manager approves the link, "
                "then you choose who may preregister."
            )
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": "link_open",
                "elements": [
                    button(
                        "Link this workspace to your company",
                        LINK_OPEN_ACTION,
                        str(state.workspace.id),
                        style="primary",
                    )
                ],
            }
        )
        return blocks
    admins = ", ".join(mention(a) for a in state.admins[:5]) or "your Slack admin"
    blocks.append(
        section(
            "This workspace is not linked to a partner yet, so no one here can preregister "
            f"customers. Ask {admins} (who installed prereg-bot here) to link it, or your "
            "ecosystem manager (below)."
        )
    )
    return blocks


def _policy(state: Onboarding) -> list[dict[str, Any]]:
    everyone = {"text": plain("Everyone in this workspace"), "value": EVERYONE}
    picked = {"text": plain("People I pick"), "value": PICKED}
    users: dict[str, Any] = {
        "type": "multi_users_select",
        "action_id": VALUE_ACTION,
        "placeholder": plain("Pick people"),
        "max_selected_items": 100,
    }
    if state.picked:
        users["initial_users"] = [user_id_of(k) for k in state.picked[:100]]
    return [
        header("Who may preregister"),
        section(
            f"This workspace is linked to *{escape(state.workspace.partner_name or '')}*. "
            "Choose who here may preregister customers for it."
        ),
        {
            "type": "input",
            "block_id": POLICY_MODE_BLOCK,
            "label": plain("Who"),
            "element": {
                "type": "radio_buttons",
                "action_id": VALUE_ACTION,
                "options": [everyone, picked],
                "initial_option": everyone if state.workspace.everyone_may_preregister else picked,
            },
        },
        {
            "type": "input",
            "block_id": POLICY_PICKED_BLOCK,
            "optional": True,
            "label": plain("People I pick"),
            "hint": plain("Used when “People I pick” is chosen."),
            "element": users,
        },
        {
            "type": "actions",
            "block_id": "policy_save",
            "elements": [button("Save", POLICY_SAVE_ACTION, str(state.workspace.id), "primary")],
        },
    ]


def policy_saved_line(saved: PolicySaved) -> str:
    who = "everyone in this workspace" if saved.everyone else "the people you picked"
    changes = []
    if saved.added:
        changes.append(f"added {', '.join(mention(k) for k in saved.added[:20])}")
    if saved.removed:
        changes.append(f"removed {', '.join(mention(k) for k in saved.removed[:20])}")
    tail = f" ({'; '.join(changes)})" if changes else ""
    return f":white_check_mark: Saved: {who} may preregister{tail}."


# --- the request modal ------------------------------------------------------------------------


def _text_input(
    block_id: str, label: str, hint: str, optional: bool = False, max_length: int = 200
) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": plain(label),
        "hint": plain(hint),
        "element": {
            "type": "plain_text_input",
            "action_id": VALUE_ACTION,
            "max_length": max_length,
        },
    }


def link_modal(workspace_name: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": LINK_CALLBACK,
        "title": plain("Link your company", 24),
        "submit": plain("Send request", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(
                f"Ask an ecosystem manager to link *{escape(workspace_name)}* to your company. "
                "Once approved, you choose who here may preregister customers."
            ),
            _text_input("name", "Company name", "Your company's legal or trading name."),
            _text_input("country", "Business country", "ISO code, e.g. DE.", max_length=2),
            _text_input(
                "contact_email",
                "Reserved contact email",
                "Where notices go when Slack cannot be reached. An email or a mobile is needed.",
                optional=True,
                max_length=254,
            ),
            _text_input(
                "contact_mobile",
                "Reserved contact mobile",
                "With country code, e.g. +49 1512 3456789.",
                optional=True,
                max_length=32,
            ),
        ],
    }


def link_sent_modal(r: LinkRequestView) -> dict[str, Any]:
    return notice_modal(
        "Request sent",
        f":hourglass_flowing_sand: Your request to link this workspace to "
        f"*{escape(r.company_name)}* went to the ecosystem managers. You'll get a DM when "
        "they decide.",
    )


def notice_modal(title: str, text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": plain(title, 24),
        "close": plain("Close", 24),
        "blocks": [section(text)],
    }


# --- the manager channel ----------------------------------------------------------------------


def _facts(r: LinkRequestView) -> dict[str, Any]:
    contacts = " · ".join(escape(c) for c in (r.contact_email, r.contact_mobile) if c)
    return {
        "type": "section",
        "block_id": f"link_facts_{r.id}",
        "fields": [
            md(f"*Company*\n{escape(truncate(r.company_name, 200))} ({escape(r.country)})"),
            md(f"*Reserved contact*\n{contacts}"),
            md(f"*Workspace*\n{escape(truncate(r.workspace_name, 200))} (`{escape(r.org_id)}`)"),
            md(f"*Requested by*\n`{escape(user_id_of(r.requested_by))}` of that workspace"),
        ],
    }


def link_request_message(r: LinkRequestView, partners: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """The post in the manager channel with Approve / Reject and "link to an existing one"."""
    elements: list[dict[str, Any]] = [
        button("Approve", LINK_APPROVE_ACTION, str(r.id), style="primary"),
        button("Reject", LINK_REJECT_ACTION, str(r.id), style="danger"),
    ]
    if partners:
        elements.append(
            {
                "type": "static_select",
                "action_id": LINK_PICK_ACTION,
                "placeholder": plain("or link to an existing partner", 150),
                "options": [
                    {"text": plain(name, 75), "value": str(pid)} for pid, name in partners[:100]
                ],
            }
        )
    return {
        "text": f"Link request: {escape(r.company_name)} ({escape(r.workspace_name)})",
        "blocks": [
            header("Link request: partner workspace"),
            _facts(r),
            context(
                "Approve creates the partner from this request, or links to the existing "
                "partner picked in the menu. Its admins then pick who may preregister."
            ),
            {"type": "actions", "block_id": f"link_{r.id}", "elements": elements},
        ],
    }


def _verdict(r: LinkRequestView) -> str:
    if r.status == "approved":
        line = f":white_check_mark: *Approved*: linked to *{escape(r.partner_name or '')}*"
    else:
        line = ":no_entry: *Rejected*"
    by = mention(r.decided_by) if r.decided_by else "a manager"
    line += f" by {by}"
    if r.decided_at is not None:
        line += f" at {when(r.decided_at)}"
    return line


def link_decided_message(r: LinkRequestView, reason: str | None) -> dict[str, Any]:
    """The same post after the decision: who decided and when, no buttons left."""
    blocks = [header("Link request decided"), _facts(r), section(_verdict(r))]
    if reason:
        blocks.append(section(f"*Reason:* {escape(reason)}"))
    verdict = "Approved" if r.status == "approved" else "Rejected"
    return {"text": f"{verdict}: link request of {escape(r.company_name)}", "blocks": blocks}


def link_outcome_dm(r: LinkRequestView, reason: str | None) -> dict[str, Any]:
    """What the requester is told, in their own workspace."""
    if r.status == "approved":
        text = (
            f":white_check_mark: This workspace is now linked to "
            f"*{escape(r.partner_name or r.company_name)}*."
        )
        step = (
            "*What to do next:* open prereg-bot's Home tab and choose who may preregister "
            "customers: everyone in this workspace, or the people you pick. Then they use "
            "`/preregister`."
        )
        return {"text": text, "blocks": [section(text), section(step)]}
    text = (
        f":no_entry: Your request to link this workspace to *{escape(r.company_name)}* was "
        "rejected."
    )
    blocks = [section(text)]
    if reason:
        blocks.append(section(f"*Reason:* {escape(reason)}"))
    blocks.append(context("You can send a corrected request from prereg-bot's Home tab."))
    return {"text": text, "blocks": blocks}


def link_reject_modal(r: LinkRequestView, private_metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": LINK_REJECT_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain("Reject link request", 24),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(
                f"Reject the request to link *{escape(r.workspace_name)}* to "
                f"*{escape(r.company_name)}*?"
            ),
            {
                "type": "input",
                "block_id": "reason",
                "optional": True,
                "label": plain("Reason"),
                "hint": plain("The requester sees this reason."),
                "element": {
                    "type": "plain_text_input",
                    "action_id": VALUE_ACTION,
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
    }
