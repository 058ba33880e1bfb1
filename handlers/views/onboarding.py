"""Onboarding a partner's workspace (distributed mode, issue 14): App Home's link button and
"Who may preregister", the link request modal, the request post in the manager channel with
its decided form, the reject modal and the DM to the requester. Pure builders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.i18n import _
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


def _b(label: str) -> str:
    return f"*{label}*"


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
    blocks = [header(_("Set up prereg-bot for your company"))]
    if state.pending is not None:
        blocks.append(
            section(
                ":hourglass_flowing_sand: "
                + _(
                    "A request to link this workspace to *{company}* is waiting for an "
                    "ecosystem manager. The requester gets a DM when it is decided."
                ).format(company=escape(state.pending.company_name))
            )
        )
        return blocks
    if state.is_admin:
        blocks.append(
            section(
                _(
                    "This workspace is not linked to a partner yet, so no one here can "
                    "preregister customers. Link it to your company: an ecosystem manager "
                    "approves the link, then you choose who may preregister."
                )
            )
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": "link_open",
                "elements": [
                    button(
                        _("Link this workspace to your company"),
                        LINK_OPEN_ACTION,
                        str(state.workspace.id),
                        style="primary",
                    )
                ],
            }
        )
        return blocks
    admins = ", ".join(mention(a) for a in state.admins[:5]) or _("your Slack admin")
    blocks.append(
        section(
            _(
                "This workspace is not linked to a partner yet, so no one here can preregister "
                "customers. Ask {admins} (who installed prereg-bot here) to link it, or your "
                "ecosystem manager (below)."
            ).format(admins=admins)
        )
    )
    return blocks


def _policy(state: Onboarding) -> list[dict[str, Any]]:
    everyone = {"text": plain(_("Everyone in this workspace")), "value": EVERYONE}
    picked = {"text": plain(_("People I pick")), "value": PICKED}
    users: dict[str, Any] = {
        "type": "multi_users_select",
        "action_id": VALUE_ACTION,
        "placeholder": plain(_("Pick people")),
        "max_selected_items": 100,
    }
    if state.picked:
        users["initial_users"] = [user_id_of(k) for k in state.picked[:100]]
    return [
        header(_("Who may preregister")),
        section(
            _(
                "This workspace is linked to *{partner}*. Choose who here may preregister "
                "customers for it."
            ).format(partner=escape(state.workspace.partner_name or ""))
        ),
        {
            "type": "input",
            "block_id": POLICY_MODE_BLOCK,
            "label": plain(_("Who")),
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
            "label": plain(_("People I pick")),
            "hint": plain(_("Used when “People I pick” is chosen.")),
            "element": users,
        },
        {
            "type": "actions",
            "block_id": "policy_save",
            "elements": [
                button(
                    _("Save"),
                    POLICY_SAVE_ACTION,
                    str(state.workspace.id),
                    "primary",
                    label=_("Save who may preregister customers"),
                )
            ],  # fmt: skip
        },
    ]


def policy_saved_line(saved: PolicySaved) -> str:
    changes = []
    if saved.added:
        added = ", ".join(mention(k) for k in saved.added[:20])
        changes.append(_("added {people}").format(people=added))
    if saved.removed:
        removed = ", ".join(mention(k) for k in saved.removed[:20])
        changes.append(_("removed {people}").format(people=removed))
    tail = f" ({'; '.join(changes)})" if changes else ""
    said = (
        _("Saved: everyone in this workspace may preregister{changes}.")
        if saved.everyone
        else _("Saved: the people you picked may preregister{changes}.")
    )
    return ":white_check_mark: " + said.format(changes=tail)


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
        "title": plain(_("Link your company"), 24),
        "submit": plain(_("Send request"), 24),
        "close": plain(_("Cancel"), 24),
        "blocks": [
            section(
                _(
                    "Ask an ecosystem manager to link *{workspace}* to your company. Once "
                    "approved, you choose who here may preregister customers."
                ).format(workspace=escape(workspace_name))
            ),
            _text_input("name", _("Company name"), _("Your company's legal or trading name.")),
            _text_input("country", _("Business country"), _("ISO code, e.g. DE."), max_length=2),
            _text_input(
                "contact_email",
                _("Reserved contact email"),
                _("Where notices go when Slack cannot be reached. An email or a mobile is needed."),
                optional=True,
                max_length=254,
            ),
            _text_input(
                "contact_mobile",
                _("Reserved contact mobile"),
                _("With country code, e.g. +49 1512 3456789."),
                optional=True,
                max_length=32,
            ),
        ],
    }


def link_sent_modal(r: LinkRequestView) -> dict[str, Any]:
    return notice_modal(
        _("Request sent"),
        ":hourglass_flowing_sand: "
        + _(
            "Your request to link this workspace to *{company}* went to the ecosystem "
            "managers. You'll get a DM when they decide."
        ).format(company=escape(r.company_name)),
    )


def notice_modal(title: str, text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": plain(title, 24),
        "close": plain(_("Close"), 24),
        "blocks": [section(text)],
    }


# --- the manager channel ----------------------------------------------------------------------


def _facts(r: LinkRequestView) -> dict[str, Any]:
    contacts = " · ".join(escape(c) for c in (r.contact_email, r.contact_mobile) if c)
    return {
        "type": "section",
        "block_id": f"link_facts_{r.id}",
        "fields": [
            md(
                _b(_("Company"))
                + f"\n{escape(truncate(r.company_name, 200))} ({escape(r.country)})"
            ),
            md(_b(_("Reserved contact")) + f"\n{contacts}"),
            md(
                _b(_("Workspace"))
                + f"\n{escape(truncate(r.workspace_name, 200))} (`{escape(r.org_id)}`)"
            ),
            md(
                _b(_("Requested by"))
                + "\n"
                + _("{user} of that workspace").format(
                    user=f"`{escape(user_id_of(r.requested_by))}`"
                )
            ),
        ],
    }


def link_request_message(r: LinkRequestView, partners: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """The post in the manager channel with Approve / Reject and "link to an existing one"."""
    elements: list[dict[str, Any]] = [
        button(
            _("Approve"),
            LINK_APPROVE_ACTION,
            str(r.id),
            style="primary",
            label=_("Approve linking {workspace} for {company}").format(
                workspace=truncate(r.workspace_name, 30), company=truncate(r.company_name, 30)
            ),
        ),
        button(
            _("Reject"),
            LINK_REJECT_ACTION,
            str(r.id),
            style="danger",
            label=_("Reject linking {workspace} for {company}").format(
                workspace=truncate(r.workspace_name, 30), company=truncate(r.company_name, 30)
            ),
        ),
    ]
    if partners:
        elements.append(
            {
                "type": "static_select",
                "action_id": LINK_PICK_ACTION,
                "placeholder": plain(_("or link to an existing partner"), 150),
                "options": [
                    {"text": plain(name, 75), "value": str(pid)} for pid, name in partners[:100]
                ],
            }
        )
    return {
        "text": _("Link request: {company} ({workspace})").format(
            company=escape(r.company_name), workspace=escape(r.workspace_name)
        ),
        "blocks": [
            header(_("Link request: partner workspace")),
            _facts(r),
            context(
                _(
                    "Approve creates the partner from this request, or links to the existing "
                    "partner picked in the menu. Its admins then pick who may preregister."
                )
            ),
            {"type": "actions", "block_id": f"link_{r.id}", "elements": elements},
        ],
    }


def _verdict(r: LinkRequestView) -> str:
    by = mention(r.decided_by) if r.decided_by else _("a manager")
    at = when(r.decided_at) if r.decided_at is not None else None
    if r.status == "approved":
        said = (
            _("*Approved*: linked to *{partner}* by {by} at {at}")
            if at
            else _("*Approved*: linked to *{partner}* by {by}")
        )
        return ":white_check_mark: " + said.format(
            partner=escape(r.partner_name or ""), by=by, at=at
        )
    said = _("*Rejected* by {by} at {at}") if at else _("*Rejected* by {by}")
    return ":no_entry: " + said.format(by=by, at=at)


def link_decided_message(r: LinkRequestView, reason: str | None) -> dict[str, Any]:
    """The same post after the decision: who decided and when, no buttons left."""
    blocks = [header(_("Link request decided")), _facts(r), section(_verdict(r))]
    if reason:
        blocks.append(section(_b(_("Reason:")) + f" {escape(reason)}"))
    said = (
        _("Approved: link request of {company}")
        if r.status == "approved"
        else _("Rejected: link request of {company}")
    )
    return {"text": said.format(company=escape(r.company_name)), "blocks": blocks}


def link_outcome_dm(r: LinkRequestView, reason: str | None) -> dict[str, Any]:
    """What the requester is told, in their own workspace."""
    if r.status == "approved":
        text = ":white_check_mark: " + _("This workspace is now linked to *{partner}*.").format(
            partner=escape(r.partner_name or r.company_name)
        )
        step = (
            _b(_("What to do next:"))
            + " "
            + _(
                "open prereg-bot's Home tab and choose who may preregister customers: everyone in "
                "this workspace, or the people you pick. Then they use `/preregister`."
            )
        )
        return {"text": text, "blocks": [section(text), section(step)]}
    text = ":no_entry: " + _(
        "Your request to link this workspace to *{company}* was rejected."
    ).format(company=escape(r.company_name))
    blocks = [section(text)]
    if reason:
        blocks.append(section(_b(_("Reason:")) + f" {escape(reason)}"))
    blocks.append(context(_("You can send a corrected request from prereg-bot's Home tab.")))
    return {"text": text, "blocks": blocks}


def link_reject_modal(r: LinkRequestView, private_metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": LINK_REJECT_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain(_("Reject link request"), 24),
        "submit": plain(_("Reject"), 24),
        "close": plain(_("Cancel"), 24),
        "blocks": [
            section(
                _("Reject the request to link *{workspace}* to *{company}*?").format(
                    workspace=escape(r.workspace_name), company=escape(r.company_name)
                )
            ),
            {
                "type": "input",
                "block_id": "reason",
                "optional": True,
                "label": plain(_("Reason")),
                "hint": plain(_("The requester sees this reason.")),
                "element": {
                    "type": "plain_text_input",
                    "action_id": VALUE_ACTION,
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
    }
