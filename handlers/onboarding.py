"""Onboarding a partner's workspace in Slack (distributed mode, issue 14).

The workspace's admin (its installer, later the approved requester) asks on App Home to link it
to their company; the request is posted to the manager channel in the vendor's workspace, where
a registered manager approves (a new partner, or an existing one picked in the menu) or rejects
it; the post is updated and the requester gets a DM in their own workspace. Once linked, the
admin chooses on App Home who there may preregister."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from bot import notices
from bot.errors import InvalidInput, NotFound, Refused
from bot.i18n import _
from bot.outbox.delivery import Job, PermanentFailure, persist
from bot.slack.after_ack import after_ack
from bot.slack.workspaces import TokenChanged, WorkspaceUnavailable
from handlers import views
from handlers.home import build_home
from handlers.ids import parse_id
from handlers.reach import in_channel_language, in_reader_language, or_email

log = logging.getLogger(__name__)


def _tell(respond: Any, text: str) -> None:
    """An ephemeral note to the clicker; the channel message stays as it is."""
    respond({"response_type": "ephemeral", "replace_original": False, "text": text})


def _value(values: dict[str, Any], block: str) -> str:
    return str(((values.get(block) or {}).get(views.VALUE_ACTION) or {}).get("value") or "")


def _state_values(body: dict[str, Any]) -> dict[str, Any]:
    """The inputs' values of the surface a click came from (a message, or App Home)."""
    state = body.get("state") or (body.get("view") or {}).get("state") or {}
    values = state.get("values") if isinstance(state, dict) else None
    return values if isinstance(values, dict) else {}


def _picked_partner(body: dict[str, Any], request_id: int) -> int | None:
    """The existing partner a manager picked in the request's menu, if any."""
    block = _state_values(body).get(f"link_{request_id}") or {}
    option = (block.get(views.LINK_PICK_ACTION) or {}).get("selected_option") or {}
    return parse_id(option.get("value"))


class NotPostedYet(Exception):
    """The decision came before the request's post was recorded: retried later."""


def register_senders(registry: Any, services: Any) -> None:
    workspaces = services.workspaces

    def in_vendor(channel: str, call: Callable[[Any, str], Any]) -> Any:
        """`call(client, channel)` in the vendor's workspace (where MANAGER_CHANNEL_ID is),
        again at once with the new token if the vendor reinstalled the app meanwhile."""
        # Keyed with the vendor's own team id: SlackClients caches the vendor's token under
        # that id, so a dead token is forgotten and the new one found (`None` would not).
        home = services.settings.home_team
        key = f"{home}:{channel}" if home and services.slack.distributed else channel
        try:
            with services.slack.reaching(key) as (client, raw):
                return call(client, raw)
        except TokenChanged:
            with services.slack.reaching(key) as (client, raw):
                return call(client, raw)

    def subject(job: Job) -> Any:
        rid = job.payload.get("link_request_id")
        r = workspaces.link_request(rid) if isinstance(rid, int) else None
        if r is None:
            raise PermanentFailure(f"link request {rid!r} does not exist")
        return r

    def send_link_request(job: Job) -> dict[str, Any] | None:
        r = subject(job)
        if r.review_message_ts:
            return {"skipped": "already posted", "ts": r.review_message_ts}
        channel = services.settings.manager_channel_id
        if not channel:
            raise PermanentFailure("MANAGER_CHANNEL_ID is not set")
        with in_channel_language(services, channel):
            message = (
                views.link_request_message(r, workspaces.partner_choices())
                if r.status == "pending"
                else views.link_decided_message(r, None)
            )
        reply = in_vendor(
            channel, lambda client, ch: client.chat_postMessage(channel=ch, **message)
        )
        persist(
            lambda: workspaces.set_link_message(r.id, reply["channel"], reply["ts"]),
            f"where link request {r.id} was posted",
        )
        return {"channel": reply["channel"], "ts": reply["ts"]}

    def send_link_decided(job: Job) -> dict[str, Any] | None:
        r = subject(job)
        reason = job.payload.get("reason") if isinstance(job.payload.get("reason"), str) else None
        result: dict[str, Any] = {}
        if r.review_channel_id and r.review_message_ts:
            with in_channel_language(services, r.review_channel_id):
                update = views.link_decided_message(r, reason)
            in_vendor(
                r.review_channel_id,
                lambda client, ch: client.chat_update(channel=ch, ts=r.review_message_ts, **update),
            )
            result["updated"] = r.review_message_ts
        elif workspaces.link_request_unposted(r.id):
            # Posting is under way (or retried): update that post once it is there.
            raise NotPostedYet(f"link request {r.id} is not posted yet")
        with in_reader_language(services, r.requested_by):
            outcome = views.link_outcome_dm(r, reason)

            def dm() -> dict[str, Any]:
                with services.slack.reaching(r.requested_by) as (client, user):
                    return {"dm": client.chat_postMessage(channel=user, **outcome).get("ts")}

            if r.partner_id is not None:
                title = _("prereg-bot: the request to link {company} is decided").format(
                    company=r.company_name
                )
                return result | or_email(services, r.partner_id, title, outcome["text"], dm)
        try:
            try:
                return result | dm()
            except TokenChanged:
                return result | dm()
        except WorkspaceUnavailable as gone:
            raise PermanentFailure(f"link request {r.id}: {gone}") from gone

    registry.register(notices.LINK_REQUEST, send_link_request)
    registry.register(notices.LINK_DECIDED, send_link_decided)


def register(app: Any, services: Any) -> None:
    if not services.settings.distributed:
        return
    workspaces = services.workspaces

    def publish_home(client: Any, user_id: str, actor: str, notice: str | None = None) -> None:
        client.views_publish(user_id=user_id, view=build_home(services, actor, notice))

    def refresh_home(client: Any, user_id: str, actor: str) -> None:
        """App Home again after a change made elsewhere (best effort: it is redrawn on open)."""
        try:
            publish_home(client, user_id, actor)
        except Exception:  # noqa: BLE001 - the change is saved; only the redraw failed
            log.warning("could not refresh App Home", exc_info=True)

    @app.action(views.LINK_OPEN_ACTION)
    @after_ack
    def open_link_modal(body, client, context) -> None:  # type: ignore[no-untyped-def]
        state = workspaces.onboarding(context["actor"])
        if state is None or not state.is_admin:
            view = views.notice_modal(
                _("Not available"),
                _("Only the person who installed prereg-bot in this workspace can link it."),
            )
        elif state.workspace.partner_id is not None:
            view = views.notice_modal(_("Already linked"), _("This workspace is already linked."))
        elif state.pending is not None:
            view = views.link_sent_modal(state.pending)
        else:
            view = views.link_modal(state.workspace.name or state.workspace.org_id)
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view(views.LINK_CALLBACK)
    def link_submitted(ack, body, view, client, context) -> None:  # type: ignore[no-untyped-def]
        values = (view.get("state") or {}).get("values") or {}
        fields = {name: _value(values, name).strip() for name in views.LINK_FIELDS}
        try:
            request = workspaces.request_link(
                context["actor"],
                fields["name"],
                fields["country"],
                fields["contact_email"] or None,
                fields["contact_mobile"] or None,
            )
        except InvalidInput as invalid:
            errors = {k: v for k, v in invalid.errors.items() if k in views.LINK_FIELDS}
            ack(response_action="errors", errors=errors or {"name": str(invalid)})
            return
        except Refused as refused:
            ack(response_action="errors", errors={"name": refused.message})
            return
        ack(response_action="update", view=views.link_sent_modal(request))
        services.deliverer.kick()
        user_id = (body.get("user") or {}).get("id")
        if user_id:
            after_ack.executor.submit(refresh_home, client, user_id, context["actor"])

    @app.action(views.LINK_PICK_ACTION)
    def partner_picked(ack) -> None:  # type: ignore[no-untyped-def]
        """Picking a partner decides nothing: Approve reads the pick from the message."""
        ack()

    @app.action(views.LINK_APPROVE_ACTION)
    @after_ack
    def approve(body, action, respond, context) -> None:  # type: ignore[no-untyped-def]
        rid = parse_id(action.get("value"))
        if rid is None:
            _tell(respond, ":warning: " + _("This button does not name a link request."))
            return
        try:
            workspaces.decide_link(
                context["actor"], rid, approve=True, partner_id=_picked_partner(body, rid)
            )
        except (Refused, NotFound) as refused:
            _tell(respond, f":no_entry_sign: {refused.message}")
            return
        services.deliverer.kick()

    @app.action(views.LINK_REJECT_ACTION)
    @after_ack
    def reject(body, action, respond, client, context) -> None:  # type: ignore[no-untyped-def]
        rid = parse_id(action.get("value"))
        if rid is None:
            _tell(respond, ":warning: " + _("This button does not name a link request."))
            return
        try:
            workspaces.ensure_manager(context["actor"], "link_reject", rid)
        except Refused as refused:
            _tell(respond, f":no_entry_sign: {refused.message}")
            return
        r = workspaces.link_request(rid)
        if r is None or r.status != "pending":
            _tell(respond, ":no_entry_sign: " + _("This link request was already decided."))
            return
        metadata = json.dumps({"id": rid})
        client.views_open(trigger_id=body["trigger_id"], view=views.link_reject_modal(r, metadata))

    @app.view(views.LINK_REJECT_CALLBACK)
    def reject_submitted(ack, view, context) -> None:  # type: ignore[no-untyped-def]
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        rid = parse_id(meta.get("id")) if isinstance(meta, dict) else None
        if rid is None:
            ack(response_action="errors", errors={"reason": _("This form lost its request.")})
            return
        reason = _value((view.get("state") or {}).get("values") or {}, "reason")
        try:
            workspaces.decide_link(context["actor"], rid, approve=False, reason=reason)
        except InvalidInput as invalid:
            ack(response_action="errors", errors={"reason": next(iter(invalid.errors.values()))})
            return
        except (Refused, NotFound) as refused:
            ack(response_action="errors", errors={"reason": refused.message})
            return
        ack()
        services.deliverer.kick()

    @app.action(views.POLICY_SAVE_ACTION)
    @after_ack
    def save_policy(body, client, context) -> None:  # type: ignore[no-untyped-def]
        values = _state_values(body)
        mode = (values.get(views.POLICY_MODE_BLOCK) or {}).get(views.VALUE_ACTION) or {}
        everyone = (mode.get("selected_option") or {}).get("value") == views.EVERYONE
        chosen = (values.get(views.POLICY_PICKED_BLOCK) or {}).get(views.VALUE_ACTION) or {}
        users = chosen.get("selected_users") or []
        actor = context["actor"]
        try:
            users = [u for u in users if isinstance(u, str)]
            saved = workspaces.set_policy(actor, everyone, users)
            notice = views.policy_saved_line(saved)
        except InvalidInput as invalid:
            cause = next(iter(invalid.errors.values()))
            notice = ":warning: " + _("Nothing saved: {cause}").format(cause=views.escape(cause))
        except Refused as refused:
            notice = ":warning: " + _("Nothing saved: {cause}").format(
                cause=views.escape(refused.message)
            )
        publish_home(client, body["user"]["id"], actor, notice)
