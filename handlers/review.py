"""Manual review (R3) in Slack: the request posted to the manager channel, Approve / Reject
buttons for registered managers only, the reason modal, and the notices that follow."""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from typing import Any

from slack_sdk.webhook import WebhookClient

from bot import notices
from bot.errors import Busy, InvalidInput, NotFound, Refused
from bot.i18n import _, use
from bot.outbox.delivery import LEASE, Job, PermanentFailure, persist
from bot.pacing import Paced, Pacer, deferrable
from bot.slack.after_ack import after_ack
from handlers import views
from handlers.desk import desk_of, review_message, undecided_for_manager
from handlers.ids import parse_id
from handlers.reach import in_channel_language, in_reader_language, or_email
from handlers.views import desk as desk_views

log = logging.getLogger(__name__)


def _tell(respond: Any, text: str) -> None:
    """An ephemeral note to the clicker; the channel message stays as it is."""
    respond({"response_type": "ephemeral", "replace_original": False, "text": text})


def _vendor(services: Any) -> Any:
    """The vendor's workspace, where MANAGER_CHANNEL_ID is."""
    return services.slack.for_org(None)


def _update_post(services: Any, p: Any) -> str | None:
    """The review post shows the decision. Its ts, or None when it was never posted."""
    if not (p.review_channel_id and p.review_message_ts):
        return None
    with in_channel_language(services, p.review_channel_id):
        decided = views.review_decided_message(p)
    _vendor(services).chat_update(channel=p.review_channel_id, ts=p.review_message_ts, **decided)
    return str(p.review_message_ts)


def _update_at_once(services: Any, p: Any, token: str, pacer: Pacer | None = None) -> None:
    """The review post's update by the task that decided, its notice held for it: no claim
    and transaction of the outbox's before the manager sees the decision. The rest of the
    notice (the submitter's DM) goes back to the outbox; so does all of it when the update
    cannot be sent now (over Slack's pace, Slack failing): the outbox sends it at Slack's
    pace as before. A crash here leaves the hold to expire: the outbox sends it then.
    `pacer`: for a client that is not paced itself (the web process's)."""
    rest: dict[str, Any] = {"preregistration_id": p.id}
    try:
        client = _vendor(services)
        if pacer is None or pacer.take(client.token or "", "chat.update", None) is None:
            with deferrable():  # nothing written yet: a paced call gives the notice back
                ts = _update_post(services, p)
            if ts is not None:
                rest["post_updated"] = ts
    except Paced:
        pass
    except Exception as exc:  # noqa: BLE001 - the outbox tries it again, with its backoff
        log.warning("the review post's update failed at once (%s); queued", type(exc).__name__)
    services.deliverer.hand_back(notices.review_decided_key(p.id), token, rest)


def register_senders(registry: Any, services: Any) -> None:
    service = services.service

    def vendor() -> Any:
        return _vendor(services)

    def subject(job: Job) -> Any:
        pid = job.payload.get("preregistration_id")
        p = service.view(pid) if isinstance(pid, int) else None
        if p is None:
            raise PermanentFailure(f"preregistration {pid!r} does not exist")
        return p

    def send_review_request(job: Job) -> dict[str, Any] | None:
        p = subject(job)
        if p.review_message_ts:
            return {"skipped": "already posted", "ts": p.review_message_ts}
        channel = services.settings.manager_channel_id
        if not channel:
            raise PermanentFailure("MANAGER_CHANNEL_ID is not set")
        # Rendered from the current state: a request decided before it was posted shows the
        # decision, not buttons.
        with in_channel_language(services, channel):
            message = review_message(services, p)
        reply = vendor().chat_postMessage(channel=channel, **message)
        persist(
            lambda: service.set_review_message(p.id, reply["channel"], reply["ts"]),
            f"where review request {p.id} was posted",
        )
        return {"channel": reply["channel"], "ts": reply["ts"]}

    def send_review_decided(job: Job) -> dict[str, Any] | None:
        p = subject(job)
        result: dict[str, Any] = {}
        if p.review_message_ts and job.payload.get("post_updated") == p.review_message_ts:
            result["updated_at_decision"] = p.review_message_ts  # by _update_at_once
        elif (ts := _update_post(services, p)) is not None:
            result["updated"] = ts
        with in_reader_language(services, p.submitted_by, p.partner_language):
            outcome = views.review_outcome_dm(p)

            def dm() -> dict[str, Any]:
                with services.slack.reaching(p.submitted_by) as (client, user):
                    return {"dm": client.chat_postMessage(channel=user, **outcome).get("ts")}

            title = _("prereg-bot: the review of {name} is decided").format(name=p.full_name)
            result |= or_email(services, p.partner_id, title, outcome["text"], dm)
        return result

    def decide_click(job: Job) -> dict[str, Any] | None:
        payload = job.payload
        lang = payload.get("lang")
        token = uuid.uuid4().hex
        with use(lang if isinstance(lang, str) else None):  # the manager's, from the click
            try:
                decided = service.approve_holding_update(
                    str(payload["manager"]), int(payload["preregistration_id"]), token, LEASE
                )
            except (Refused, NotFound) as refused:
                reply_to = payload.get("response_url")
                if reply_to:
                    _tell(
                        WebhookClient(str(reply_to), timeout=10).send_dict,
                        f":no_entry_sign: {refused.message}",
                    )
                return {"refused": getattr(refused, "code", "not_found")}
        if decided is not None and decided[1]:
            _update_at_once(services, decided[0], token)
        else:
            services.deliverer.kick()
        return {"approved": True}

    registry.register(notices.DECISION_CLICK, decide_click)
    registry.register(notices.REVIEW_REQUEST, send_review_request)
    registry.register(notices.REVIEW_DECIDED, send_review_decided)


def register(app: Any, services: Any) -> None:
    service = services.service
    pacer = Pacer()  # this process's chat.update calls for decisions (the worker paces its own)

    def decide_now(manager: str, pid: int, click_id: str, respond: Any) -> bool:
        """An Approve click decided where it arrived, right after the ack (the after-ack
        pool): the decision, then the review post's update, no queue and no worker between
        them. False when the database is busy: the click is then queued for the worker
        (`decide_click`), the durable way. The click is recorded with the decision, so a
        Slack retry of it decides nothing, here or in the worker."""
        token = uuid.uuid4().hex
        try:
            decided = service.approve_holding_update(manager, pid, token, LEASE, click_id)
        except Busy:
            return False
        except (Refused, NotFound) as refused:
            _tell(respond, f":no_entry_sign: {refused.message}")
            return True
        if decided is not None and decided[1]:
            _update_at_once(services, decided[0], token, pacer)
        elif decided is not None:
            services.deliverer.kick()
        return True

    @app.action(views.APPROVE_ACTION)
    @after_ack
    def approve(body, action, respond, client, context) -> None:  # type: ignore[no-untyped-def]
        pid = parse_id(action.get("value"))
        if pid is None:
            _tell(respond, ":warning: " + _("This button does not name a request."))
            return
        reviewer = desk_of(services).confirm_needed(context["actor"], pid)
        if reviewer is not None and service.is_manager(context["actor"]):
            p = service.view(pid)
            meta = json.dumps({"id": pid})
            client.views_open(
                trigger_id=body["trigger_id"],
                view=desk_views.approve_confirm_modal(p, reviewer, meta),
            )
            return
        click_id = str(action.get("action_ts") or body.get("trigger_id") or "")
        if not decide_now(context["actor"], pid, click_id, respond):
            service.queue_approval(context["actor"], pid, click_id, body.get("response_url"))
            services.deliverer.kick()

    @app.action(views.REJECT_ACTION)
    @after_ack
    def reject(body, action, respond, client, context) -> None:  # type: ignore[no-untyped-def]
        p = undecided_for_manager(service, respond, context["actor"], "reject", action)
        if p is None:
            return
        metadata = json.dumps({"id": p.id})
        client.views_open(trigger_id=body["trigger_id"], view=views.reject_modal(p, metadata))

    @app.view(views.REJECT_CALLBACK)
    def reason_submitted(ack, body, view, context) -> None:  # type: ignore[no-untyped-def]
        user = context["actor"]
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        pid = parse_id(meta.get("id")) if isinstance(meta, dict) else None
        if pid is None:
            ack(
                response_action="errors",
                errors={"reason": _("This form lost track of its request; reject it again.")},
            )
            return
        values = (view.get("state") or {}).get("values") or {}
        reason = ((values.get("reason") or {}).get(views.VALUE_ACTION) or {}).get("value") or ""
        token = uuid.uuid4().hex
        try:
            p, held = service.reject_holding_update(user, pid, reason, (token, LEASE))
        except InvalidInput as invalid:
            message = invalid.errors.get("reason") or next(iter(invalid.errors.values()))
            ack(response_action="errors", errors={"reason": message})
            return
        except (Refused, NotFound) as refused:
            ack(response_action="errors", errors={"reason": refused.message})
            return
        ack()
        if held:  # the post's update on the after-ack pool, as for Approve
            run = contextvars.copy_context().run
            after_ack.executor.submit(run, _update_at_once, services, p, token, pacer)
        else:
            services.deliverer.kick()
