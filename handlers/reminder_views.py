"""Block Kit for scheduled notices: expiry (R5), expiry reminders, review escalations (R3) and
the daily digest. Pure functions: a value in, a message body (`text` + `blocks`) out.
Every user-typed string goes through `escape`."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.i18n import N_, _, ngettext
from bot.i18n import format_when as local_date
from bot.models import PreregView
from bot.schedule import Digest
from handlers.mrkdwn import escape, format_when, mention, truncate
from handlers.views import STATUS_LABELS
from handlers.views.common import review_why

LIST_HINT = N_("See all your customers with `/preregister list`.")
SECTION_LIMIT = 3000
HEADER_LIMIT = 150


def _customer(p: PreregView) -> str:
    return f"*{escape(truncate(p.full_name, 100))}* ({escape(p.email)})"


def _customer_plain(p: PreregView) -> str:
    return f"{escape(truncate(p.full_name, 100))} ({escape(p.email)})"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_LIMIT)}}


def _header(text: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(text, HEADER_LIMIT), "emoji": True},
    }


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, 2000)}]}


def _day(day: date) -> str:
    """`Mon 7 Dec 2026` / `2026年12月7日`, in the reader's language (Babel)."""
    return local_date(day, with_time=False)


def _days(n: int) -> str:
    return ngettext("{n} day", "{n} days", n).format(n=n)


# --- partner notices (R5) --------------------------------------------------------------------


def expired_message(p: PreregView, tz: str | None) -> dict[str, Any]:
    when = format_when(p.expires_at, tz) if p.expires_at else _("its 15th day")
    return {
        "text": _("Preregistration expired: {customer}").format(customer=_customer_plain(p)),
        "blocks": [
            _section(
                ":hourglass: "
                + _(
                    "The preregistration of {customer} has *expired* (it was valid until "
                    "{when}).\nThe customer is free again: any partner may now preregister "
                    "them. To claim them again, preregister them anew with `/preregister`."
                ).format(customer=_customer(p), when=when)
            ),
            _context(_submitted_by(p)),
        ],
    }


def _submitted_by(p: PreregView) -> str:
    return _("Submitted by {who}.").format(who=mention(p.submitted_by)) + " " + _(LIST_HINT)


def reminder_message(p: PreregView, days_before: int, tz: str | None) -> dict[str, Any]:
    when = format_when(p.expires_at, tz) if p.expires_at else _("soon")
    days = _days(days_before)
    return {
        "text": _("Preregistration expires within {days}: {customer}").format(
            days=days, customer=_customer_plain(p)
        ),
        "blocks": [
            _section(
                ":alarm_clock: "
                + _(
                    "The preregistration of {customer} expires within *{days}*, on *{when}*.\n"
                    "Once it expires any partner may preregister the customer."
                ).format(customer=_customer(p), days=days, when=when)
                + " "
                + (
                    _("The customer has been invited by email; remind them to accept.")
                    if p.send_invitation
                    else _("Share the invitation link with the customer so they can accept it.")
                )
            ),
            _context(_submitted_by(p)),
        ],
    }


# --- manager escalations (R3) ----------------------------------------------------------------


def _review_facts(p: PreregView) -> str:
    customer = _customer(p)
    if p.customer_country:
        customer = _("{customer}, country {country}").format(
            customer=customer, country=escape(p.customer_country)
        )
    lines = [
        _("*Partner:* {partner} ({country})").format(
            partner=escape(p.partner_name), country=escape(p.partner_country)
        ),
        _("*Customer:* {customer}").format(customer=customer),
        _("*Submitted by:* {member}").format(member=mention(p.submitted_by)),
    ]
    why = review_why(p)
    if why:
        lines.append(_("*Why review:* {why}").format(why=truncate(why, 500)))
    return "\n".join(lines)


def review_due_soon_message(p: PreregView) -> dict[str, Any]:
    when = format_when(p.review_due_at) if p.review_due_at else _("soon")
    return {
        "text": _("Review due soon (by {when}): {customer} for {partner}").format(
            when=when, customer=_customer_plain(p), partner=escape(p.partner_name)
        ),
        "blocks": [
            _section(
                ":hourglass_flowing_sand: "
                + _(
                    "This review is *due by {when}* (two working days from submission). "
                    "Please approve or reject it."
                ).format(when=when)
            ),
            _section(_review_facts(p)),
        ],
    }


def review_overdue_message(p: PreregView, threaded: bool) -> dict[str, Any]:
    when = format_when(p.review_due_at) if p.review_due_at else _("earlier")
    where = (
        _("Approve or reject it with the buttons on the request above.")
        if threaded
        else _("Approve or reject it from the review request in this channel.")
    )
    return {
        "text": _("Review overdue (was due {when}): {customer} for {partner}").format(
            when=when, customer=_customer_plain(p), partner=escape(p.partner_name)
        ),
        "blocks": [
            _section(
                ":rotating_light: "
                + _(
                    "This review is *overdue*: it was due by {when}, two working days after "
                    "submission. {where}"
                ).format(when=when, where=where)
            ),
            _section(_review_facts(p)),
        ],
    }


# --- the daily digest ------------------------------------------------------------------------


def _lines(items: list[str], total: int, empty: str, more: str) -> str:
    if not items:
        return empty
    text = "\n".join(items)
    if total > len(items):
        text += "\n" + _("…and {count} more ({more}).").format(count=total - len(items), more=more)
    return text


def digest_message(d: Digest, tz: str | None) -> dict[str, Any]:
    counts = " · ".join(
        f"{_(label)} {d.counts[status]}"
        for status, label in STATUS_LABELS.items()
        if d.counts.get(status)
    )
    expiring = _lines(
        [
            "• "
            + _("{customer}: expires {when}").format(
                customer=_customer(p), when=format_when(p.expires_at, tz)
            )
            for p in d.expiring
            if p.expires_at
        ],
        d.expiring_total,
        _("Nothing expires in the next 7 days."),
        "`/preregister list preregistered`",
    )
    reviews = _lines(
        [
            "• "
            + _("{customer}: review due {when}").format(
                customer=_customer(p), when=format_when(p.review_due_at, tz)
            )
            for p in d.under_review
            if p.review_due_at
        ],
        d.under_review_total,
        _("Nothing is under review."),
        "`/preregister list under review`",
    )
    return {
        "text": _(
            "Daily digest for {partner}, {day}: {expiring} expiring this week, "
            "{reviews} under review"
        ).format(
            partner=escape(d.partner.name),
            day=_day(d.day),
            expiring=d.expiring_total,
            reviews=d.under_review_total,
        ),
        "blocks": [
            _header(_("Daily digest: {partner}").format(partner=d.partner.name)),
            _context(f"{_day(d.day)} · {counts or _('no customers yet')}"),
            _section(
                _("*Expiring in the next 7 days ({count})*").format(count=d.expiring_total)
                + f"\n{expiring}"
            ),
            _section(
                _("*Under review ({count})*").format(count=d.under_review_total) + f"\n{reviews}"
            ),
            *_action_required(d),
            _context(_(LIST_HINT)),
        ],
    }


def _action_required(d: Digest) -> list[dict[str, Any]]:
    """Requests a manager sent back with a question: the partner must answer them."""
    waiting = d.counts.get("action_required", 0)
    if not waiting:
        return []
    return [
        _section(
            _(
                "*Action required ({count})*\nA manager asked a question: answer with *Edit "
                "and resubmit* in the manager's message, or they expire after 5 working days "
                "(`/preregister list action required`)."
            ).format(count=waiting)
        )
    ]
