"""App Home: the partner's quota and customers for members, the review queue for managers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.i18n import _
from bot.models import PartnerSummary, PreregView
from handlers.mrkdwn import escape, truncate
from handlers.views.common import (
    STATUS_LABELS,
    contact_lines,
    context,
    divider,
    header,
    md,
    queue_case,
    review_why,
    section,
    status_label,
    when,
)
from handlers.views.desk import QUEUE_HEADER_BLOCK

HOME_QUEUE_LIMIT = 30
HOME_EXPIRING_LIMIT = 10  # keeps the section well under 3000 characters


def _partner_home(summary: PartnerSummary) -> list[dict[str, Any]]:
    used, limit = summary.quota_used, summary.quota_limit
    filled = min(10, round(10 * used / limit)) if limit else 0
    bar = "▰" * filled + "▱" * (10 - filled)
    blocks: list[dict[str, Any]] = [
        header(truncate(summary.partner.name, 150)),
        section(
            _("*Quota:* {used} / {limit} customers under review or preregistered").format(
                used=used, limit=limit
            )
            + f"\n`{bar}`"
        ),
    ]
    counts = [
        md(f"*{status_label(status)}*\n{summary.counts.get(status, 0)}") for status in STATUS_LABELS
    ]
    blocks.append({"type": "section", "block_id": "home_counts", "fields": counts})
    if summary.expiring_soon:
        soon = [p for p in summary.expiring_soon if p.expires_at is not None]
        lines = [
            "• "
            + _("{name}: expires {when}").format(
                name=escape(truncate(p.full_name, 60)), when=when(p.expires_at)
            )
            for p in soon[:HOME_EXPIRING_LIMIT]
        ]
        if len(soon) > HOME_EXPIRING_LIMIT:
            more = len(soon) - HOME_EXPIRING_LIMIT
            lines.append(_("…and {count} more (`/preregister list`)").format(count=more))
        blocks.append(section(_("*Expiring in the next 7 days*") + "\n" + "\n".join(lines)))
    else:
        blocks.append(section(_("*Expiring in the next 7 days*") + "\n" + _("Nothing.")))
    blocks.append(context(_("`/preregister` to add a customer · `/preregister list` to see them")))
    return blocks


def _manager_home(queue: Sequence[PreregView], manager_channel: str | None) -> list[dict[str, Any]]:
    where = (
        " " + _("Decide in {channel}.").format(channel=f"<#{escape(manager_channel)}>")
        if manager_channel
        else ""
    )
    blocks: list[dict[str, Any]] = [{**header(_("Review queue")), "block_id": QUEUE_HEADER_BLOCK}]
    if not queue:
        blocks.append(section(_("No requests are waiting for review.")))
        return blocks
    blocks.append(context(_("{n} waiting, oldest first.").format(n=len(queue)) + where))
    for p in queue[:HOME_QUEUE_LIMIT]:
        blocks.append(section(f"{queue_case(p)}\n{review_why(p)}"))
    return blocks


def home_view(
    summary: PartnerSummary | None,
    queue: Sequence[PreregView] | None,
    contacts: Sequence[tuple[str, str | None]],
    manager_channel: str | None = None,
    workspace: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Partner section for members, review queue for managers, both for someone who is both;
    `workspace` (handlers/views/onboarding.py) first, in a partner's own workspace."""
    blocks: list[dict[str, Any]] = list(workspace)
    if blocks and (summary is not None or queue is not None):
        blocks.append(divider())
    if summary is not None:
        blocks.extend(_partner_home(summary))
    if queue is not None:
        if summary is not None:
            blocks.append(divider())
        blocks.extend(_manager_home(queue, manager_channel))
    if summary is None and queue is None and not workspace:
        blocks.append(header("prereg-bot"))
        blocks.append(
            section(
                _(
                    "You are not set up as a member of a partner yet, so there is nothing to "
                    "show. Ask your ecosystem manager to add you."
                )
            )
        )
    blocks.append(divider())
    blocks.append(context(contact_lines(contacts)))
    return {"type": "home", "callback_id": "home", "blocks": blocks}
