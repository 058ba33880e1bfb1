"""Senders for scheduled notices: expiry (R5), expiry reminders, review escalations (R3) and
the daily digest.

Partner notices go to the partner's notice channel (`/preregister notify here`), or by DM to
the member who submitted when there is none (or the bot was removed from it). Manager
escalations go to MANAGER_CHANNEL_ID, threaded under the original review request when its
ts is known. Each post carries message metadata naming its outbox key.
A sender raises to be retried, raises PermanentFailure to give up, and returns
`{"skipped": why}` when the notice no longer applies (the row changed meanwhile).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import notices
from bot.i18n import DEFAULT, from_slack_locale, use
from bot.models import PartnerView, PreregView
from bot.outbox.delivery import Job, PermanentFailure, SenderRegistry
from bot.schedule import ScheduledWork, SchedulePolicy
from bot.slack.workspaces import WorkspaceUnavailable
from handlers.reach import in_channel_language, notice_subject, or_email
from handlers.reminder_views import (
    digest_message,
    expired_message,
    reminder_message,
    review_due_soon_message,
    review_overdue_message,
)

log = logging.getLogger(__name__)

# Errors that no retry can cure.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "no_text",
        "invalid_arguments",
        "invalid_metadata_format",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "account_inactive",
    }
)
# The notice channel is unusable: fall back to a DM.
CHANNEL_GONE = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
METADATA_EVENT = "prereg_notice"


def _error(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "")
    except Exception:  # noqa: BLE001 - a response without a JSON body
        return ""


class ReminderSenders:
    def __init__(self, services: Any, work: ScheduledWork) -> None:
        """`services` is bot.wiring.app.Services (not imported: handlers never import the root)."""
        self.services = services
        self.work = work

    # --- helpers ---------------------------------------------------------------------------

    def _prereg(self, job: Job) -> PreregView:
        prereg = self.services.service.view(int(job.payload["preregistration_id"]))
        if prereg is None:
            raise PermanentFailure(f"preregistration {job.payload['preregistration_id']} is gone")
        return prereg

    def _tz(self, member: str) -> str | None:
        """The member's own time zone from Slack; None (shown as UTC) when Slack cannot say."""
        try:
            with self.services.slack.reaching(member) as (client, user):
                response = client.users_info(user=user, include_locale=True)
        except SlackApiError as exc:
            log.warning("users.info %s failed (%s): times shown in UTC", member, _error(exc))
            return None
        except WorkspaceUnavailable:
            return None
        found = response.get("user") or {}
        if found.get("locale"):  # one call tells both: the reader's language too
            self.services.languages.remember(member, from_slack_locale(found["locale"]))
        return found.get("tz") or None

    def _language(self, partner: PartnerView, member: str | None, channel: str | None) -> str:
        """A channel post follows the partner's language; a DM its reader's (asked with the
        time zone, so `_tz` runs first)."""
        if channel or not member:
            return partner.language or DEFAULT
        return self.services.languages.cached(member) or partner.language or DEFAULT

    def _post(self, job: Job, target: str, message: dict[str, Any], **extra: Any) -> dict:
        """To a user or channel key (bot/identity.py), with its workspace's token."""
        try:
            with self.services.slack.reaching(target) as (client, channel):
                response = client.chat_postMessage(
                    channel=channel,
                    text=message["text"],
                    blocks=message["blocks"],
                    metadata={
                        "event_type": METADATA_EVENT,
                        "event_payload": {"kind": job.kind, "dedupe_key": job.dedupe_key},
                    },
                    **extra,
                )
        except SlackApiError as exc:
            if _error(exc) in PERMANENT_ERRORS:
                raise PermanentFailure(f"Slack refused the post: {_error(exc)}") from exc
            raise
        return {"channel": response.get("channel"), "ts": response.get("ts")}

    def _post_partner(
        self, job: Job, partner: PartnerView, member: str, message: dict[str, Any]
    ) -> dict:
        """To the partner's notice channel if there is one the bot can post in, else by DM to
        `member`; by email to its reserved contact if its workspace's installation is gone."""
        return or_email(
            self.services,
            partner.id,
            notice_subject(partner.name),
            message["text"],
            lambda: self._to_channel_or_member(job, partner.notice_channel_id, member, message),
        )

    def _to_channel_or_member(
        self, job: Job, channel: str | None, member: str, message: dict[str, Any]
    ) -> dict:
        if channel:
            try:
                return self._post(job, channel, message)
            except SlackApiError as exc:
                if _error(exc) not in CHANNEL_GONE:
                    raise
                log.warning("notice channel %s unusable (%s): DM instead", channel, _error(exc))
        return self._post(job, member, message)

    def _or_email(self, partner: PartnerView, message: dict[str, Any], post: Any) -> dict:
        return or_email(
            self.services, partner.id, notice_subject(partner.name), message["text"], post
        )

    def _post_escalation(self, job: Job, prereg: PreregView, message: dict, **extra: Any) -> dict:
        manager_channel = self.services.settings.manager_channel_id
        if prereg.review_message_ts:
            channel = prereg.review_channel_id or manager_channel
            if channel:
                try:
                    return self._post(
                        job, channel, message, thread_ts=prereg.review_message_ts, **extra
                    )
                except SlackApiError as exc:
                    if _error(exc) not in ("thread_not_found", *CHANNEL_GONE):
                        raise
                    log.warning("review thread unusable (%s): posting unthreaded", _error(exc))
        if not manager_channel:
            raise RuntimeError("MANAGER_CHANNEL_ID is not set: cannot escalate the review")
        return self._post(job, manager_channel, message)

    def _review_language(self, prereg: PreregView) -> AbstractContextManager[str]:
        """An escalation is posted where the review is: in that channel's language."""
        channel = prereg.review_channel_id or self.services.settings.manager_channel_id
        return in_channel_language(self.services, channel)

    def _partner(self, partner_id: int) -> PartnerView:
        partner = self.work.partner(partner_id)
        if partner is None:
            raise PermanentFailure(f"partner {partner_id} is gone")
        return partner

    # --- senders ---------------------------------------------------------------------------

    def expired(self, job: Job) -> dict:
        prereg = self._prereg(job)
        partner = self._partner(prereg.partner_id)
        tz = self._tz(prereg.submitted_by)
        with use(self._language(partner, prereg.submitted_by, partner.notice_channel_id)):
            message = expired_message(prereg, tz)
            return self._post_partner(job, partner, prereg.submitted_by, message)

    def expiry_reminder(self, job: Job) -> dict:
        prereg = self._prereg(job)
        now = self.services.clock.now()
        if prereg.status != "preregistered" or (prereg.expires_at and prereg.expires_at <= now):
            return {"skipped": f"no longer valid ({prereg.status})"}
        partner = self._partner(prereg.partner_id)
        days = int(job.payload.get("days_before") or 1)
        tz = self._tz(prereg.submitted_by)
        with use(self._language(partner, prereg.submitted_by, partner.notice_channel_id)):
            message = reminder_message(prereg, days, tz)
            return self._post_partner(job, partner, prereg.submitted_by, message)

    def review_due_soon(self, job: Job) -> dict:
        prereg = self._prereg(job)
        if prereg.status != "under_review":
            return {"skipped": f"already decided ({prereg.status})"}
        if prereg.review_due_at and prereg.review_due_at <= self.services.clock.now():
            return {"skipped": "already overdue"}
        with self._review_language(prereg):
            message = review_due_soon_message(prereg)
        return self._post_escalation(job, prereg, message)

    def review_overdue(self, job: Job) -> dict:
        prereg = self._prereg(job)
        if prereg.status != "under_review":
            return {"skipped": f"already decided ({prereg.status})"}
        threaded = bool(prereg.review_message_ts)
        with self._review_language(prereg):
            message = review_overdue_message(prereg, threaded)
        extra = {"reply_broadcast": True} if threaded else {}
        return self._post_escalation(job, prereg, message, **extra)

    def digest(self, job: Job) -> dict:
        partner_id = int(job.payload["partner_id"])
        day = date.fromisoformat(job.payload["date"])
        as_of = datetime.fromisoformat(job.payload["as_of"])
        member = job.payload.get("member")
        digest = self.work.digest(partner_id, day, as_of)
        if digest is None:
            raise PermanentFailure(f"partner {partner_id} is gone")
        if digest.is_empty:
            return {"skipped": "nothing under review or preregistered"}
        if member:
            tz = self._tz(member)
            with use(self._language(digest.partner, member, None)):
                message = digest_message(digest, tz)
                return self._or_email(
                    digest.partner, message, lambda: self._post(job, member, message)
                )
        channel = digest.partner.digest_channel
        if channel:
            with use(self._language(digest.partner, None, channel)):
                message = digest_message(digest, None)
                try:
                    return self._or_email(
                        digest.partner, message, lambda: self._post(job, channel, message)
                    )
                except SlackApiError as exc:
                    if _error(exc) not in CHANNEL_GONE:
                        raise
                    log.warning(
                        "digest channel %s unusable (%s): DMs instead", channel, _error(exc)
                    )
        members = self.work.fan_out_digest(partner_id, day, as_of)
        if members:
            self.services.deliverer.kick()
        return {"fanned_out": members}


def register_senders(registry: SenderRegistry, services: Any) -> None:
    work = ScheduledWork(
        services.db, services.clock, SchedulePolicy.from_settings(services.settings)
    )
    senders = ReminderSenders(services, work)
    registry.register(notices.EXPIRED, senders.expired)
    registry.register(notices.EXPIRY_REMINDER, senders.expiry_reminder)
    registry.register(notices.REVIEW_DUE_SOON, senders.review_due_soon)
    registry.register(notices.REVIEW_OVERDUE, senders.review_overdue)
    registry.register(notices.DIGEST, senders.digest)
