"""`/preregister help` (commands, rules in brief, R13 contact) and `/preregister flow` (R10)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.i18n import N_, _
from handlers.mrkdwn import escape
from handlers.views.common import contact_lines, context, ephemeral, header, section

COMMANDS = (
    ("/preregister", N_("open the form to preregister a customer")),
    (
        "/preregister list [status]",
        N_(
            "your customers. Without a status: all but the deleted ones. Or one of: "
            "under review, preregistered, associated, rejected, expired, deleted, all"
        ),
    ),
    ("/preregister check <email>", N_("could this customer be preregistered now, and if not, why")),
    (
        "/preregister delete <email> [<email> …]",
        N_("delete preregistrations (not Under review or Associated)"),
    ),
    (
        "/preregister notify here",
        N_("send your company's notices to this channel (`notify off` to stop)"),
    ),
    ("/preregister digest here", N_("a daily digest in this channel (`digest off` to stop)")),
    (
        "/preregister language zh|en",
        N_("the language of your company's notices and emails (managers: of this channel)"),
    ),
    ("/preregister flow", N_("the customer-development steps as a flowchart")),
    ("/preregister help", N_("this help")),
)

RULES_IN_BRIEF = (
    N_("Your company needs a reserved contact email or mobile number before it can preregister."),
    N_(
        "Some customers cannot be claimed. For example: they already work with the vendor or "
        "with another partner, or another partner claimed them first. The answer tells you why."
    ),
    N_(
        "A customer in another country than your company's goes to review first. An ecosystem "
        "manager decides within two working days."
    ),
    N_("Your company can have at most 100 customers under review or preregistered at once."),
    N_("A preregistration lasts 15 days. The customer must sign up with the email you entered."),
    N_("You cannot delete customers who are under review or already associated."),
)


def help_message(
    contacts: Sequence[tuple[str, str | None]], note: str | None = None
) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if note:
        blocks.append(section(note))
    blocks.append(header(_("prereg-bot help")))
    blocks.append(section("\n".join(f"• `{escape(cmd)}`: {_(what)}" for cmd, what in COMMANDS)))
    rules = "\n".join(f"• {_(r)}" for r in RULES_IN_BRIEF)
    blocks.append(section(_("*The rules in brief*") + "\n" + rules))
    blocks.append(section(contact_lines(contacts)))
    return ephemeral(_("prereg-bot help: /preregister, list, check, delete, flow, help"), blocks)


FLOW_STEPS = (
    (
        ":mag:",
        N_("Check"),
        N_("`/preregister check &lt;email&gt;` tells whether the customer is free."),
    ),
    (
        ":memo:",
        N_("Preregister"),
        N_(
            "`/preregister`: full name, email, mobile, send invitation yes/no. Known vendor "
            "customers, another partner's customers, or a full quota (100) are refused."
        ),
    ),
    (
        ":twisted_rightwards_arrows:",
        N_("Same country?"),
        N_(
            "*Yes* → Preregistered for 15 days. *No* → Under review: an ecosystem manager approves "
            "(→ Preregistered) or rejects within two working days."
        ),
    ),
    (
        ":email:",
        N_("Invite"),
        N_(
            "Invitation *yes*: the link is emailed at once. *No*: you get the link and a QR "
            "code to share, and can send the email later from `/preregister list`."
        ),
    ),
    (
        ":handshake:",
        N_("Customer accepts"),
        N_("With the same email, within the 15 days → *Associated* with your company."),
    ),
    (
        ":hourglass:",
        N_("Otherwise"),
        N_(
            "After 15 days the preregistration *expires* (you are reminded first) and the customer "
            "is free again. You may delete it earlier (not while Under review or Associated)."
        ),
    ),
)


def flow_message() -> dict[str, Any]:
    """R10: the customer-development steps, one block per step with arrows between."""
    blocks: list[dict[str, Any]] = [header(_("Customer development: the steps"))]
    for i, (emoji, title, text) in enumerate(FLOW_STEPS, start=1):
        if i > 1:
            blocks.append(context(":arrow_down:"))
        blocks.append(section(f"{emoji} *{i}. {_(title)}*\n{_(text)}"))
    steps = " → ".join(_(title) for _emoji, title, _text in FLOW_STEPS)
    return ephemeral(_("Customer development: {steps}").format(steps=steps), blocks)
