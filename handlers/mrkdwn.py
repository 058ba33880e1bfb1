"""Text helpers for Slack mrkdwn. Every user-typed string goes through `escape` before it is
put into mrkdwn or a message's `text`, so a name cannot ping `@channel` or forge a link."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.i18n import DEFAULT, language
from bot.i18n import format_when as i18n_format_when
from bot.identity import user_id_of


def escape(text: str | None) -> str:
    """Slack's own escaping: `&`, `<`, `>` (the only characters that form control sequences)."""
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_key: str) -> str:
    """A user mention of a stored key (bot/identity.py); ids come from Slack or the operator,
    never from free text."""
    return f"<@{escape(user_id_of(user_key))}>"


def link(url: str, label: str) -> str:
    """A mrkdwn link. `|` in the label would end it early, so it is replaced."""
    return f"<{escape(url)}|{escape(label).replace('|', '/')}>"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def zone(tz_name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz_name) if tz_name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_when(at: datetime, tz_name: str | None = None) -> str:
    """`Tue 8 Dec 2026, 10:00 CET` / `2026年12月8日周二 10:00 CET`: a time in the reader's zone
    (UTC when unknown) and language."""
    local = at.astimezone(zone(tz_name))
    if language() == DEFAULT:
        return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}"
    return f"{i18n_format_when(local)} {local.tzname()}"


def format_date(at: datetime, tz_name: str | None = None) -> str:
    local = at.astimezone(zone(tz_name))
    if language() == DEFAULT:
        return f"{local.day} {local:%b %Y}"
    return i18n_format_when(local, with_time=False)
