"""Reaching a partner's people: in their own workspace with its token, or, when that
workspace's installation is gone (uninstalled, tokens revoked), by email to the partner's
reserved contact (R1), so that no notice keeps retrying against a dead token."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from bot.i18n import N_, _, use
from bot.outbox.delivery import PermanentFailure
from bot.outbox.mailer import SmtpConfig, compose_notice, send
from bot.slack.workspaces import TokenChanged, WorkspaceUnavailable

log = logging.getLogger(__name__)

EMAIL_INTRO = N_(
    "prereg-bot cannot reach your company's Slack workspace (the app is no longer installed "
    "there), so this notice comes by email. To get notices in Slack again, ask your Slack "
    "admin to install prereg-bot again. Questions: ask your ecosystem manager."
)
"""The first lines of every notice sent by email instead of Slack: why it is an email."""

_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")
_BARE = re.compile(r"<([^>]+)>")


@contextmanager
def in_reader_language(services: Any, key: str, otherwise: str | None = None) -> Iterator[str]:
    """Within the block, texts are in the language of the person of `key`: known from their
    own requests, else asked of Slack once (users.info with their locale). When their
    workspace is gone (the notice will go by email), `otherwise`: their company's language."""
    lang = services.languages.cached(key)
    if lang is None:
        try:
            with services.slack.reaching(key) as (client, user):
                lang = services.languages.ask_slack(key, client, user)
        except WorkspaceUnavailable:
            lang = otherwise
    with use(lang) as chosen:
        yield chosen


def in_channel_language(services: Any, channel: str | None) -> AbstractContextManager[str]:
    """Within the block, texts are in the language set for `channel` (a channel of the
    vendor's workspace, e.g. the review channel) with `/preregister language`; default
    English."""
    return use(services.service.channel_language(channel) if channel else None)


def mrkdwn_to_plain(text: str) -> str:
    """Slack mrkdwn as plain email text: `<url|label>` becomes `label (url)`, escapes undone."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
    text = _BARE.sub(lambda m: m.group(1).lstrip("@#!"), text)
    return html.unescape(text.replace("*", ""))


def notice_subject(partner_name: str) -> str:
    """The subject of a notice to a partner sent by email, in the language in use."""
    return _("prereg-bot: a notice for {partner}").format(partner=partner_name)


def or_email(
    services: Any, partner_id: int, subject: str, text: str, send_in_slack: Callable[[], Any]
) -> Any:
    """`send_in_slack()`, or the notice by email when the partner's workspace is gone. Call it
    in the language the notice was written in: the email's subject and its first lines are
    written in the language in use."""
    try:
        try:
            return send_in_slack()
        except TokenChanged:
            return send_in_slack()
    except WorkspaceUnavailable as gone:
        return email_contact(services, partner_id, subject, text, gone)


def email_contact(
    services: Any, partner_id: int, subject: str, text: str, gone: WorkspaceUnavailable
) -> dict[str, Any]:
    contact = services.workspaces.partner_contact_email(partner_id)
    config = SmtpConfig.from_settings(services.settings)
    if contact is None or config is None:
        raise PermanentFailure(
            f"partner {partner_id}: Slack workspace unavailable ({gone.reason}) and no "
            "reserved contact email to write to instead"
        ) from gone
    body = _(EMAIL_INTRO) + "\n\n" + mrkdwn_to_plain(text)
    message = compose_notice(contact, subject, body, config.sender, services.clock.now())
    send(message, config)
    log.info("partner %s notified by email: its Slack workspace is %s", partner_id, gone.reason)
    return {"fallback": "email"}
