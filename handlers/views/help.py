"""`/preregister help` (commands, rules in brief, R13 contact) and `/preregister flow` (R10)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handlers.mrkdwn import escape
from handlers.views.common import contact_lines, context, ephemeral, header, section

COMMANDS = (
    ("/preregister", "open the form to preregister a customer"),
    (
        "/preregister list [status]",
        "your customers. Without a status: all but the deleted ones. Or one of: "
        "under review, preregistered, associated, rejected, expired, deleted, all",
    ),
    ("/preregister check <email>", "could this customer be preregistered now, and if not, why"),
    (
        "/preregister delete <email> [<email> …]",
        "delete preregistrations (not Under review or Associated)",
    ),
    (
        "/preregister notify here",
        "send your company's notices to this channel (`notify off` to stop)",
    ),
    ("/preregister digest here", "a daily digest in this channel (`digest off` to stop)"),
    ("/preregister flow", "the customer-development steps as a flowchart"),
    ("/preregister help", "this help"),
)

RULES_IN_BRIEF = (
    "Your company needs a reserved contact email or mobile number before it can preregister.",
    "Some customers cannot be claimed. For example: they already work with the vendor or "
    "with another partner, or another partner claimed them first. The answer tells you why.",
    "A customer in another country than your company's goes to review first. An ecosystem "
    "manager decides within two working days.",
    "Your company can have at most 100 customers under review or preregistered at once.",
    "A preregistration lasts 15 days. The customer must sign up with the email you entered.",
    "You cannot delete customers who are under review or already associated.",
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
        "With the same email, within the 15 days → *Associated* with your company.",
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
