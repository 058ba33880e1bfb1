"""Pure Block Kit builders: every modal, message and Home view the app shows.

Nothing here talks to Slack or the database; each function takes value objects from the
service and returns a dict. Every user-typed string goes through `escape` (mrkdwn) or is put
into a plain_text object, so a customer named `<!channel>` pings no one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import phonenumbers

from bot.models import DeleteResult, Eligibility, Page, PartnerSummary, PreregView
from bot.rules import DELETABLE_STATUSES
from handlers.mrkdwn import escape, format_date, format_when, mention, truncate

# --- identifiers shared by the builders, the listeners and the tests -------------------------

PREREGISTER_CALLBACK = "preregister"
REJECT_CALLBACK = "review_reject"
FIELD_BLOCKS = ("full_name", "email", "mobile", "send_invitation")
VALUE_ACTION = "value"

APPROVE_ACTION = "review_approve"
REJECT_ACTION = "review_reject"

LIST_TOGGLE_ACTION = "customers_toggle_contacts"
LIST_PAGE_ACTION = "customers_page"
LIST_DELETE_ACTION = "customers_delete"
LIST_SELECT_ACTION = "customers_select"
LIST_DELETE_SELECTED_ACTION = "customers_delete_selected"
LIST_SELECT_BLOCK = "customers_select"
SEND_INVITATION_ACTION = "send_invitation_email"  # listener lives in handlers/invitations.py

PAGE_SIZE = 10  # a checkboxes element holds at most 10 options
HOME_QUEUE_LIMIT = 30
HOME_EXPIRING_LIMIT = 10  # keeps the section well under 3000 characters

STATUS_LABELS = {
    "under_review": "Under review",
    "preregistered": "Preregistered",
    "associated": "Associated",
    "rejected": "Rejected",
    "expired": "Expired",
    "deleted": "Deleted",
}
STATUS_EMOJI = {
    "under_review": ":hourglass_flowing_sand:",
    "preregistered": ":white_check_mark:",
    "associated": ":handshake:",
    "rejected": ":no_entry:",
    "expired": ":calendar:",
    "deleted": ":wastebasket:",
}
DELETABLE = frozenset(DELETABLE_STATUSES)  # shown with a Delete button

# list filters: what `/preregister list [status]` accepts, mapped to service statuses
DEFAULT_FILTER = "current"
FILTERS: dict[str, tuple[str, ...] | None] = {
    "current": ("under_review", "preregistered", "associated", "rejected", "expired"),
    "all": None,
    **{status: (status,) for status in STATUS_LABELS},
}


# --- small pieces ----------------------------------------------------------------------------


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
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(text, 75),
        "action_id": action_id,
        "value": value,
    }
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
    return STATUS_LABELS.get(status, status.replace("_", " ").capitalize())


def mask_email(email: str) -> str:
    """R11: `ceo@customer.de` -> `c••@customer.de` (first letter and domain stay readable)."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}••@{domain}" if domain else "••••"


def mask_mobile(mobile: str) -> str:
    """R11: `+4915123456789` -> `+49 15•• •••• •89`: country code, two leading and two
    trailing digits stay readable."""
    try:
        number = phonenumbers.parse(mobile, None)
        shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        prefix = f"+{number.country_code}"
    except phonenumbers.NumberParseException:
        shown, prefix = mobile, ""
    rest = shown[len(prefix) :] if shown.startswith(prefix) else shown
    digits = [i for i, ch in enumerate(rest) if ch.isdigit()]
    keep = set(digits[:2] + digits[-2:]) if len(digits) > 4 else set()
    masked = "".join(ch if (not ch.isdigit() or i in keep) else "•" for i, ch in enumerate(rest))
    return prefix + masked


def contact_lines(contacts: Sequence[tuple[str, str | None]]) -> str:
    """R13: who to ask, as mrkdwn."""
    if not contacts:
        return (
            ":busts_in_silhouette: Need help? No ecosystem manager is registered yet; ask the "
            "person who installed prereg-bot."
        )
    people = ", ".join(
        mention(user) + (f" ({escape(email)})" if email else "") for user, email in contacts[:5]
    )
    return f":busts_in_silhouette: Need help? Your ecosystem manager: {people}"


def contact_plain(contacts: Sequence[tuple[str, str | None]]) -> str:
    """R13 for plain-text places (modal field errors): emails only, mentions do not render."""
    emails = [email for _, email in contacts if email]
    if not emails:
        return "Questions? Ask your ecosystem manager."
    return "Questions? Ecosystem manager: " + ", ".join(emails[:3])


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


# --- the preregistration modal (R7) -----------------------------------------------------------


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
                "Claim a potential customer for your partner. The claim is valid for "
                "*15 days*; no other partner can preregister the customer meanwhile."
            ),
            text_input("full_name", "Full name", "Clara Customer", "The customer's full name."),
            text_input(
                "email",
                "Email",
                "clara@customer.example",
                "The address the customer will sign up with. Only letters, digits, _ - . "
                "and one @.",
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


def next_step(p: PreregView) -> str:
    if p.status == "under_review":
        return (
            "Ecosystem managers review it because the customer's country differs from your "
            "business country. You'll get a DM with their decision."
        )
    if p.status != "preregistered":
        return ""
    if p.invited_at is not None:
        return "The invitation has gone out."
    if p.send_invitation:
        return f"The invitation email is being sent to {escape(p.email)}."
    return "You'll get the invitation link and QR code in a DM to share with the customer."


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


# --- the customer list (R9, R11) ----------------------------------------------------------


def list_state(offset: int, filter_key: str, shown: bool) -> dict[str, Any]:
    return {"o": offset, "f": filter_key, "c": int(shown)}


def _customer_row(p: PreregView, shown: bool, state: dict[str, Any]) -> list[dict[str, Any]]:
    email = escape(p.email) if shown else mask_email(escape(p.email))
    mobile = escape(p.mobile) if shown else mask_mobile(p.mobile)
    lines = [
        f"*{escape(truncate(p.full_name, 100))}* · {STATUS_EMOJI.get(p.status, '')} "
        f"{status_label(p.status)}",
        f"{email} · {mobile}",
    ]
    if p.status == "preregistered" and p.expires_at is not None:
        lines.append(f"Valid until {day(p.expires_at)}")
    elif p.status == "under_review" and p.review_due_at is not None:
        lines.append(f"Review due by {when(p.review_due_at)}")
    row: dict[str, Any] = section("\n".join(lines), block_id=f"row_{p.id}")
    if p.status in DELETABLE:
        row["accessory"] = button(
            "Delete",
            LIST_DELETE_ACTION,
            json.dumps({"id": p.id, **state}),
            style="danger",
            confirm={
                "title": plain("Delete this customer?", 100),
                "text": plain(
                    f"Delete {truncate(p.full_name, 80)}? The preregistration ends at once and "
                    "the customer is free for other partners.",
                    300,
                ),
                "confirm": plain("Delete", 30),
                "deny": plain("Cancel", 30),
                "style": "danger",
            },
        )
    blocks = [row]
    if p.status == "preregistered" and p.invited_at is None:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"invite_{p.id}",
                "elements": [button("Send invitation email", SEND_INVITATION_ACTION, str(p.id))],
            }
        )
    return blocks


def customer_list(
    page: Page,
    filter_key: str = DEFAULT_FILTER,
    shown: bool = False,
    notice: Sequence[str] = (),
) -> dict[str, Any]:
    """One page of the partner's customers as an ephemeral message (at most ~27 blocks)."""
    state = list_state(page.offset, filter_key, shown)
    label = (
        "all statuses"
        if filter_key == "all"
        else ("current customers" if filter_key == DEFAULT_FILTER else status_label(filter_key))
    )
    blocks: list[dict[str, Any]] = [header("Your customers")]
    if notice:
        blocks.append(section("\n".join(notice)))
    if page.total == 0:
        blocks.append(section(f"No customers ({label}). Preregister one with `/preregister`."))
        return {
            "response_type": "ephemeral",
            "replace_original": True,
            "text": f"No customers ({label}).",
            "blocks": blocks,
        }
    first, last = page.offset + 1, page.offset + len(page.items)
    blocks.append(
        context(
            f"{first}–{last} of {page.total} ({label}) · contact details "
            + ("shown" if shown else "hidden")
        )
    )
    blocks.append(divider())
    for p in page.items:
        blocks.extend(_customer_row(p, shown, state))
    selectable = [p for p in page.items if p.status != "deleted"]
    if selectable:
        blocks.append(divider())
        blocks.append(
            {
                "type": "actions",
                # a fresh block id per rendering, so Slack drops old ticks after a redraw
                "block_id": LIST_SELECT_BLOCK + "".join(f"_{p.id}" for p in selectable),
                "elements": [
                    {
                        "type": "checkboxes",
                        "action_id": LIST_SELECT_ACTION,
                        "options": [
                            {
                                "text": plain(
                                    f"{truncate(p.full_name, 50)} ({status_label(p.status)})", 75
                                ),
                                "value": str(p.id),
                            }
                            for p in selectable
                        ],
                    },
                    button(
                        "Delete selected",
                        LIST_DELETE_SELECTED_ACTION,
                        json.dumps(state),
                        style="danger",
                        confirm={
                            "title": plain("Delete the selected?", 100),
                            "text": plain(
                                "Delete every selected customer? Under review and Associated "
                                "customers cannot be deleted and stay as they are.",
                                300,
                            ),
                            "confirm": plain("Delete", 30),
                            "deny": plain("Cancel", 30),
                            "style": "danger",
                        },
                    ),
                ],
            }
        )
    nav = [
        button(
            "Hide contact details" if shown else "Show contact details",
            LIST_TOGGLE_ACTION,
            json.dumps(list_state(page.offset, filter_key, not shown)),
        )
    ]
    if page.has_previous:
        nav.append(
            button(
                "Previous",
                f"{LIST_PAGE_ACTION}_prev",
                json.dumps(list_state(max(0, page.offset - page.limit), filter_key, shown)),
            )
        )
    if page.has_next:
        nav.append(
            button(
                "Next",
                f"{LIST_PAGE_ACTION}_next",
                json.dumps(list_state(page.offset + page.limit, filter_key, shown)),
            )
        )
    blocks.append({"type": "actions", "block_id": "customers_nav", "elements": nav})
    return {
        "response_type": "ephemeral",
        "replace_original": True,
        "text": f"Your customers: {first}–{last} of {page.total}",
        "blocks": blocks,
    }


def delete_results(results: Sequence[DeleteResult]) -> list[str]:
    """One mrkdwn line per target: deleted, or why not (R9)."""
    return [
        (":wastebasket: " if r.deleted else ":no_entry_sign: ") + escape(r.message) for r in results
    ]


def delete_message(
    results: Sequence[DeleteResult], contacts: Sequence[tuple[str, str | None]]
) -> dict[str, Any]:
    lines = delete_results(results)
    blocks = [section("\n".join(lines))]
    if any(not r.deleted for r in results):
        blocks.append(context(contact_lines(contacts)))
    return ephemeral(truncate("\n".join(lines), 3000), blocks)


# --- check ----------------------------------------------------------------------------------


def check_message(
    email: str, result: Eligibility, contacts: Sequence[tuple[str, str | None]]
) -> dict[str, Any]:
    who = f"*{escape(email)}*"
    if result.allowed:
        text = f":white_check_mark: {who} could be preregistered now."
        if result.needs_review:
            text += (
                " Its country differs from your business country, so the request would go to "
                "the ecosystem managers for review."
            )
        blocks = [section(text), context("Nothing was claimed. Use `/preregister` to claim it.")]
        return ephemeral(text, blocks)
    text = f":no_entry_sign: {who} cannot be preregistered now: {escape(result.message)}"
    return ephemeral(
        text,
        [section(text), context("Nothing was claimed."), context(contact_lines(contacts))],
    )


# --- help and flow (R10, R13) ---------------------------------------------------------------

COMMANDS = (
    ("/preregister", "open the form to preregister a customer"),
    (
        "/preregister list [status]",
        "your customers; status: current (default), all, "
        "under_review, preregistered, associated, rejected, expired, deleted",
    ),
    ("/preregister check <email>", "could this customer be preregistered now, and if not, why"),
    (
        "/preregister delete <email> [<email> …]",
        "delete preregistrations (not Under review or Associated)",
    ),
    (
        "/preregister notify here",
        "send your partner's notices to this channel (`notify off` to stop)",
    ),
    ("/preregister digest here", "a daily digest in this channel (`digest off` to stop)"),
    ("/preregister flow", "the customer-development steps as a flowchart"),
    ("/preregister help", "this help"),
)

RULES_IN_BRIEF = (
    "Your partner needs a reserved contact email or mobile number before it can preregister.",
    "Customers known to the vendor (China-mainland site, another partner's, consumer cloud, "
    "signed contracts, cash spend without direct sales, enterprise master) cannot be "
    "preregistered; the refusal names the cause.",
    "A customer in another country than your business country goes to manual review "
    "(decided within two working days).",
    "At most 100 of your customers may be Under review or Preregistered at once.",
    "A preregistration is valid for 15 days; the customer must sign up with the registered email.",
    "Under review and Associated customers cannot be deleted.",
)


def help_message(
    contacts: Sequence[tuple[str, str | None]], note: str | None = None
) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if note:
        blocks.append(section(note))
    blocks.append(header("prereg-bot help"))
    blocks.append(section("\n".join(f"• `{escape(cmd)}`: {what}" for cmd, what in COMMANDS)))
    blocks.append(section("*The rules in brief*\n" + "\n".join(f"• {r}" for r in RULES_IN_BRIEF)))
    blocks.append(section(contact_lines(contacts)))
    return ephemeral("prereg-bot help: /preregister, list, check, delete, flow, help", blocks)


FLOW_STEPS = (
    (":mag:", "Check", "`/preregister check &lt;email&gt;` tells whether the customer is free."),
    (
        ":memo:",
        "Preregister",
        "`/preregister`: full name, email, mobile, send invitation yes/no. Known vendor "
        "customers, another partner's customers, or a full quota (100) are refused.",
    ),
    (
        ":twisted_rightwards_arrows:",
        "Same country?",
        "*Yes* → Preregistered for 15 days. *No* → Under review: an ecosystem manager approves "
        "(→ Preregistered) or rejects within two working days.",
    ),
    (
        ":email:",
        "Invite",
        "Invitation *yes*: the link is emailed at once. *No*: you get the link and a QR code to "
        "share, and can send the email later from `/preregister list`.",
    ),
    (
        ":handshake:",
        "Customer accepts",
        "With the same email, within the 15 days → *Associated* with your partner.",
    ),
    (
        ":hourglass:",
        "Otherwise",
        "After 15 days the preregistration *expires* (you are reminded first) and the customer "
        "is free again. You may delete it earlier (not while Under review or Associated).",
    ),
)


def flow_message() -> dict[str, Any]:
    """R10: the customer-development steps, one block per step with arrows between."""
    blocks: list[dict[str, Any]] = [header("Customer development: the steps")]
    for i, (emoji, title, text) in enumerate(FLOW_STEPS, start=1):
        if i > 1:
            blocks.append(context(":arrow_down:"))
        blocks.append(section(f"{emoji} *{i}. {title}*\n{text}"))
    steps = " → ".join(title for _, title, _ in FLOW_STEPS)
    return ephemeral(f"Customer development: {steps}", blocks)


# --- review (R3) ----------------------------------------------------------------------------


def _review_facts(p: PreregView) -> dict[str, Any]:
    fields = [
        md(f"*Customer*\n{escape(p.full_name)}\n{escape(p.email)}"),
        md(f"*Partner*\n{escape(p.partner_name)} ({escape(p.partner_country)})"),
        md(f"*Submitted by*\n{mention(p.submitted_by)}"),
    ]
    if p.review_due_at is not None:
        fields.append(md(f"*Due by*\n{when(p.review_due_at)}"))
    return {"type": "section", "block_id": f"review_facts_{p.id}", "fields": fields}


def _review_why(p: PreregView) -> str:
    return escape(
        p.review_reason
        or f"The customer's country ({p.customer_country}) differs from the partner's business "
        f"country ({p.partner_country})."
    )


def review_request_message(p: PreregView) -> dict[str, Any]:
    """The post in the manager channel with Approve / Reject."""
    return {
        "text": (
            f"Review needed: {escape(p.full_name)} for {escape(p.partner_name)}"
            + (f", due {format_when(p.review_due_at)}" if p.review_due_at else "")
        ),
        "blocks": [
            header("Review needed: customer preregistration"),
            _review_facts(p),
            section(f"*Why review:* {_review_why(p)}"),
            {
                "type": "actions",
                "block_id": f"review_{p.id}",
                "elements": [
                    button("Approve", APPROVE_ACTION, str(p.id), style="primary"),
                    button("Reject", REJECT_ACTION, str(p.id), style="danger"),
                ],
            },
        ],
    }


def review_decided_message(p: PreregView) -> dict[str, Any]:
    """The same post after the decision: no buttons left, who decided and when."""
    verdict = "Approved" if p.status != "rejected" else "Rejected"
    emoji = ":white_check_mark:" if verdict == "Approved" else ":no_entry:"
    by = mention(p.decided_by) if p.decided_by else "a manager"
    line = f"{emoji} *{verdict}* by {by}"
    if p.decided_at is not None:
        line += f" at {when(p.decided_at)}"
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


# --- App Home -------------------------------------------------------------------------------


def _partner_home(summary: PartnerSummary) -> list[dict[str, Any]]:
    used, limit = summary.quota_used, summary.quota_limit
    filled = min(10, round(10 * used / limit)) if limit else 0
    bar = "▰" * filled + "▱" * (10 - filled)
    blocks: list[dict[str, Any]] = [
        header(truncate(f"Your partner: {summary.partner.name}", 150)),
        section(f"*Quota:* {used} / {limit} customers Under review or Preregistered\n`{bar}`"),
    ]
    counts = [
        md(f"*{status_label(status)}*\n{summary.counts.get(status, 0)}") for status in STATUS_LABELS
    ]
    blocks.append({"type": "section", "block_id": "home_counts", "fields": counts})
    if summary.expiring_soon:
        soon = [p for p in summary.expiring_soon if p.expires_at is not None]
        lines = [
            f"• {escape(truncate(p.full_name, 60))}: expires {when(p.expires_at)}"
            for p in soon[:HOME_EXPIRING_LIMIT]
        ]
        if len(soon) > HOME_EXPIRING_LIMIT:
            lines.append(f"…and {len(soon) - HOME_EXPIRING_LIMIT} more (`/preregister list`)")
        blocks.append(section("*Expiring in the next 7 days*\n" + "\n".join(lines)))
    else:
        blocks.append(section("*Expiring in the next 7 days*\nNothing."))
    blocks.append(context("`/preregister` to add a customer · `/preregister list` to see them"))
    return blocks


def _manager_home(queue: Sequence[PreregView], manager_channel: str | None) -> list[dict[str, Any]]:
    where = f" Decide in <#{escape(manager_channel)}>." if manager_channel else ""
    blocks: list[dict[str, Any]] = [header("Review queue")]
    if not queue:
        blocks.append(section("No requests are waiting for review."))
        return blocks
    blocks.append(context(f"{len(queue)} waiting, oldest first.{where}"))
    for p in queue[:HOME_QUEUE_LIMIT]:
        due = f" · due {when(p.review_due_at)}" if p.review_due_at else ""
        blocks.append(
            section(
                f"*{escape(truncate(p.full_name, 80))}* ({escape(p.email)}) for "
                f"*{escape(p.partner_name)}*\nSubmitted {when(p.submitted_at)}{due}\n"
                f"{_review_why(p)}"
            )
        )
    return blocks


def home_view(
    summary: PartnerSummary | None,
    queue: Sequence[PreregView] | None,
    contacts: Sequence[tuple[str, str | None]],
    manager_channel: str | None = None,
) -> dict[str, Any]:
    """Partner section for members, review queue for managers, both for someone who is both."""
    blocks: list[dict[str, Any]] = []
    if summary is not None:
        blocks.extend(_partner_home(summary))
    if queue is not None:
        if blocks:
            blocks.append(divider())
        blocks.extend(_manager_home(queue, manager_channel))
    if summary is None and queue is None:
        blocks.append(header("prereg-bot"))
        blocks.append(
            section(
                "You are not set up as a member of a partner yet, so there is nothing to show. "
                "Ask your ecosystem manager to add you."
            )
        )
    blocks.append(divider())
    blocks.append(context(contact_lines(contacts)))
    return {"type": "home", "callback_id": "home", "blocks": blocks}


def error_message() -> dict[str, Any]:
    text = ":warning: Something went wrong on our side. Please try again in a moment."
    return ephemeral(text)


def error_modal() -> dict[str, Any]:
    return {
        "type": "modal",
        "title": plain("Something went wrong", 24),
        "close": plain("Close", 24),
        "blocks": [
            section(
                ":warning: Something went wrong on our side. Please try again in a moment; "
                "check `/preregister list` to see whether your request went through."
            )
        ],
    }
