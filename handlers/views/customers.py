"""The customer list (R9, R11) with its filters, paging and deletion, and the replies to
`/preregister delete` and `/preregister check`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from bot.i18n import _, per_language
from bot.models import DeleteResult, Eligibility, Page, PreregView
from bot.rules import DELETABLE_STATUSES
from handlers.mrkdwn import escape, truncate
from handlers.views.common import (
    STATUS_EMOJI,
    STATUS_LABELS,
    button,
    contact_lines,
    context,
    day,
    divider,
    ephemeral,
    header,
    plain,
    section,
    status_label,
    when,
)

LIST_TOGGLE_ACTION = "customers_toggle_contacts"
LIST_PAGE_ACTION = "customers_page"
LIST_DELETE_ACTION = "customers_delete"
LIST_SELECT_ACTION = "customers_select"
LIST_DELETE_SELECTED_ACTION = "customers_delete_selected"
LIST_SELECT_BLOCK = "customers_select"
SEND_INVITATION_ACTION = "send_invitation_email"  # listener lives in handlers/invitations.py

PAGE_SIZE = 10  # a checkboxes element holds at most 10 options
DELETABLE = frozenset(DELETABLE_STATUSES)  # shown with a Delete button

# list filters: what `/preregister list [status]` accepts, mapped to service statuses
DEFAULT_FILTER = "current"
FILTERS: dict[str, tuple[str, ...] | None] = {
    "current": (
        "under_review",
        "action_required",
        "preregistered",
        "associated",
        "rejected",
        "expired",
    ),
    "all": None,
    **{status: (status,) for status in STATUS_LABELS},
}


def mask_email(email: str) -> str:
    """R11: `ceo@customer.de` -> `c••@customer.de` (first letter and domain stay readable)."""
    local, _at, domain = email.partition("@")
    return f"{local[:1]}••@{domain}" if domain else "••••"


def mask_mobile(mobile: str) -> str:
    """R11: `+4915123456789` -> `+49 15•••••••89`: country code, two leading and two trailing
    digits stay readable. Stored numbers are E.164 (bot/validation.py), whose country code is
    read off its prefix (country codes are prefix-free): no parsing or formatting with
    phonenumbers, which took ~60 µs a row (docs/performance.md, seventh session)."""
    prefix, rest = "", mobile
    if mobile.startswith("+") and mobile[1:].isdigit():
        for size in (1, 2, 3):
            if int(mobile[1 : 1 + size]) in COUNTRY_CODE_TO_REGION_CODE:
                prefix, rest = mobile[: 1 + size] + " ", mobile[1 + size :]
                break
    digits = [i for i, ch in enumerate(rest) if ch.isdigit()]
    keep = set(digits[:2] + digits[-2:]) if len(digits) > 4 else set()
    masked = "".join(ch if (not ch.isdigit() or i in keep) else "•" for i, ch in enumerate(rest))
    return prefix + masked


def list_state(offset: int, filter_key: str, shown: bool) -> dict[str, Any]:
    return {"o": offset, "f": filter_key, "c": int(shown)}


class _RowTexts(NamedTuple):
    """What a list row says that does not change from row to row, in one language."""

    status: dict[str, str]
    valid_until: str
    review_due: str
    question: str
    delete: str
    delete_title: dict[str, Any]
    delete_text: str
    delete_yes: dict[str, Any]
    cancel: dict[str, Any]
    delete_label: str
    send_invitation: str
    email_invitation: str


@per_language
def _row_texts() -> _RowTexts:
    """Built once per language (bot/i18n.py `per_language`): a page of 10 rows asked the
    catalogs ~90 times and truncated the same labels over and over (docs/performance.md,
    ninth session). The dicts are never changed, only serialised."""
    return _RowTexts(
        status={s: f"{STATUS_EMOJI.get(s, '')} {status_label(s)}" for s in STATUS_LABELS},
        valid_until=_("Valid until {day}"),
        review_due=_("Review due by {when}"),
        question=_("Question: {question} · answer by {when}"),
        delete=_("Delete"),
        delete_title=plain(_("Delete this customer?"), 100),
        delete_text=_(
            "Delete {name}? The preregistration ends at once and the customer is "
            "free for other partners."
        ),
        delete_yes=plain(_("Delete"), 30),
        cancel=plain(_("Cancel"), 30),
        delete_label=_("Delete {name}"),
        send_invitation=_("Send invitation email"),
        email_invitation=_("Email the invitation to {name}"),
    )


def _customer_row(
    p: PreregView, shown: bool, state: dict[str, Any], texts: _RowTexts
) -> list[dict[str, Any]]:
    email = escape(p.email) if shown else mask_email(escape(p.email))
    mobile = escape(p.mobile) if shown else mask_mobile(p.mobile)
    status = texts.status.get(p.status) or (
        f"{STATUS_EMOJI.get(p.status, '')} {status_label(p.status)}"
    )
    lines = [f"*{escape(truncate(p.full_name, 100))}* · {status}", f"{email} · {mobile}"]
    if p.status == "preregistered" and p.expires_at is not None:
        lines.append(texts.valid_until.format(day=day(p.expires_at)))
    elif p.status == "under_review" and p.review_due_at is not None:
        lines.append(texts.review_due.format(when=when(p.review_due_at)))
    elif p.status == "action_required" and p.info_due_at is not None:
        lines.append(
            texts.question.format(
                question=escape(truncate(p.info_question or "", 200)), when=when(p.info_due_at)
            )
        )
    row: dict[str, Any] = section("\n".join(lines), block_id=f"row_{p.id}")
    name = truncate(p.full_name, 60)
    if p.status in DELETABLE:
        row["accessory"] = button(
            texts.delete,
            LIST_DELETE_ACTION,
            json.dumps({"id": p.id, **state}),
            style="danger",
            confirm={
                "title": texts.delete_title,
                "text": plain(texts.delete_text.format(name=truncate(p.full_name, 80)), 300),
                "confirm": texts.delete_yes,
                "deny": texts.cancel,
                "style": "danger",
            },
            label=texts.delete_label.format(name=name),
        )
    blocks = [row]
    if p.status == "preregistered" and p.invited_at is None:
        email_it = button(
            texts.send_invitation,
            SEND_INVITATION_ACTION,
            str(p.id),
            label=texts.email_invitation.format(name=name),
        )
        blocks.append({"type": "actions", "block_id": f"invite_{p.id}", "elements": [email_it]})
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
        _("all statuses")
        if filter_key == "all"
        else (_("all but deleted") if filter_key == DEFAULT_FILTER else status_label(filter_key))
    )
    blocks: list[dict[str, Any]] = [header(_("Your customers"))]
    if notice:
        blocks.append(section("\n".join(notice)))
    if page.total == 0:
        blocks.append(
            section(
                _("No customers ({label}). Preregister one with `/preregister`.").format(
                    label=label
                )
            )
        )
        return {
            "response_type": "ephemeral",
            "replace_original": True,
            "text": _("No customers ({label}).").format(label=label),
            "blocks": blocks,
        }
    first, last = page.offset + 1, page.offset + len(page.items)
    counts = _("{first}–{last} of {total} ({label})").format(
        first=first, last=last, total=page.total, label=label
    )
    details = _("contact details shown") if shown else _("contact details hidden")
    blocks.append(context(f"{counts} · {details}"))
    blocks.append(divider())
    texts = _row_texts()
    for p in page.items:
        blocks.extend(_customer_row(p, shown, state, texts))
    selectable = [p for p in page.items if p.status != "deleted"]
    labels = {p.status: status_label(p.status) for p in selectable}
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
                                    f"{truncate(p.full_name, 50)} ({labels[p.status]})", 75
                                ),
                                "value": str(p.id),
                            }
                            for p in selectable
                        ],
                    },
                    button(
                        _("Delete selected"),
                        LIST_DELETE_SELECTED_ACTION,
                        json.dumps(state),
                        style="danger",
                        confirm={
                            "title": plain(_("Delete the selected?"), 100),
                            "text": plain(
                                _(
                                    "Delete every selected customer? Customers under review "
                                    "or associated cannot be deleted and stay as they are."
                                ),
                                300,
                            ),
                            "confirm": plain(_("Delete"), 30),
                            "deny": plain(_("Cancel"), 30),
                            "style": "danger",
                        },
                        label=_("Delete the selected customers"),
                    ),
                ],
            }
        )
    nav = [
        button(
            _("Hide contact details") if shown else _("Show contact details"),
            LIST_TOGGLE_ACTION,
            json.dumps(list_state(page.offset, filter_key, not shown)),
            label=_("Hide the contact details of the customers listed")
            if shown
            else _("Show the contact details of the customers listed"),
        )
    ]
    if page.has_previous:
        nav.append(
            button(
                _("Previous"),
                f"{LIST_PAGE_ACTION}_prev",
                json.dumps(list_state(max(0, page.offset - page.limit), filter_key, shown)),
                label=_("Previous page of your customers"),
            )
        )
    if page.has_next:
        nav.append(
            button(
                _("Next"),
                f"{LIST_PAGE_ACTION}_next",
                json.dumps(list_state(page.offset + page.limit, filter_key, shown)),
                label=_("Next page of your customers"),
            )
        )
    blocks.append({"type": "actions", "block_id": "customers_nav", "elements": nav})
    return {
        "response_type": "ephemeral",
        "replace_original": True,
        "text": _("Your customers: {first}–{last} of {total}").format(
            first=first, last=last, total=page.total
        ),
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


# --- check ------------------------------------------------------------------------------------


def check_message(
    email: str, result: Eligibility, contacts: Sequence[tuple[str, str | None]]
) -> dict[str, Any]:
    who = f"*{escape(email)}*"
    claim = _("Nothing was claimed. Use `/preregister` to claim it.")
    if result.allowed and result.needs_review:
        text = ":hourglass_flowing_sand: " + _(
            "{who} is free, but a claim would go to review first. The customer is in "
            "{customer_country}, and your company's business country is {partner_country}. "
            "An ecosystem manager decides within two working days."
        ).format(
            who=who,
            customer_country=escape(result.customer_country),
            partner_country=escape(result.partner_country),
        )
        return ephemeral(text, [section(text), context(claim)])
    if result.allowed:
        text = ":white_check_mark: " + _(
            "{who} is free: you can preregister this customer now."
        ).format(who=who)
        return ephemeral(text, [section(text), context(claim)])
    text = ":no_entry_sign: " + _("{who} cannot be preregistered now: {cause}").format(
        who=who, cause=escape(result.message)
    )
    return ephemeral(
        text,
        [section(text), context(_("Nothing was claimed.")), context(contact_lines(contacts))],
    )
