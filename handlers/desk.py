"""The managers' desk in Slack: send back for information and the partner's resubmission, one
reviewer per case (take, release, reassign, approve-anyway), the managers' App Home pages, and
the senders of the desk's notices (the question DM, the answer threaded under the review post,
the reminder and expiry of an unanswered question, the review post refreshed, the weekly
report with its chart)."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Any

from bot import notices
from bot.desk import Desk
from bot.errors import InvalidInput, NotFound, Refused
from bot.i18n import N_, _
from bot.identity import same_org_key
from bot.models import PreregView
from bot.outbox.delivery import Job, PermanentFailure
from bot.slack.after_ack import after_ack
from handlers import views
from handlers.ids import parse_id
from handlers.modal import field_errors, read_form
from handlers.reach import in_channel_language, in_reader_language, or_email
from handlers.views import desk as desk_views

log = logging.getLogger(__name__)
MAX_ERROR = 1500


def desk_of(services: Any) -> Desk:
    return Desk(services.service)


def _tell(respond: Any, text: str) -> None:
    respond({"response_type": "ephemeral", "replace_original": False, "text": text})


def _meta_id(view: dict[str, Any]) -> int | None:
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return None
    return parse_id(meta.get("id")) if isinstance(meta, dict) else None


def _value(view: dict[str, Any], block_id: str) -> str:
    values = (view.get("state") or {}).get("values") or {}
    return str(((values.get(block_id) or {}).get(views.VALUE_ACTION) or {}).get("value") or "")


def review_message(services: Any, p: Any) -> dict[str, Any]:
    """The review post as the row stands now (similar requests looked up beside it)."""
    if p.status in ("under_review", "action_required"):
        return views.review_request_message(p, desk_of(services).similar(p.id))
    return views.review_decided_message(p)


# --- senders --------------------------------------------------------------------------------


def register_senders(registry: Any, services: Any) -> None:
    service = services.service

    def subject(job: Job) -> Any:
        pid = job.payload.get("preregistration_id")
        p = service.view(pid) if isinstance(pid, int) else None
        if p is None:
            raise PermanentFailure(f"preregistration {pid!r} does not exist")
        return p

    def dm_submitter(p: Any, render: Any, title: str) -> dict[str, Any]:
        """`render(p)` in the submitter's language, sent to them; `title` (marked with N_,
        `{name}` the customer's) is the subject if it must go by email instead."""
        with in_reader_language(services, p.submitted_by, p.partner_language):
            message = render(p)

            def dm() -> dict[str, Any]:
                with services.slack.reaching(p.submitted_by) as (client, user):
                    return {"dm": client.chat_postMessage(channel=user, **message).get("ts")}

            subject = _(title).format(name=p.full_name)
            return or_email(services, p.partner_id, subject, message["text"], dm)

    def info_requested(job: Job) -> dict[str, Any]:
        p = subject(job)
        if p.status != "action_required":
            return {"skipped": f"no longer waiting ({p.status})"}
        title = N_("prereg-bot: a question about your customer {name}")
        return dm_submitter(p, desk_views.info_request_dm, title)

    def info_reminder(job: Job) -> dict[str, Any]:
        p = subject(job)
        if p.status != "action_required":
            return {"skipped": f"no longer waiting ({p.status})"}
        title = N_("prereg-bot: a question about {name} is still unanswered")
        return dm_submitter(p, desk_views.info_reminder_dm, title)

    def info_expired(job: Job) -> dict[str, Any]:
        p = subject(job)
        title = N_("prereg-bot: the preregistration of {name} has expired")
        return dm_submitter(p, desk_views.info_expired_dm, title)

    def refresh(job: Job) -> dict[str, Any]:
        p = subject(job)
        if not (p.review_channel_id and p.review_message_ts):
            return {"skipped": "review post not known"}
        with in_channel_language(services, p.review_channel_id):
            message = review_message(services, p)
        services.slack.for_org(None).chat_update(
            channel=p.review_channel_id, ts=p.review_message_ts, **message
        )
        return {"updated": p.review_message_ts}

    def info_answered(job: Job) -> dict[str, Any]:
        result = refresh(job)
        p = subject(job)
        if p.review_channel_id and p.review_message_ts and p.info_answer:
            with in_channel_language(services, p.review_channel_id):
                answer = desk_views.answer_in_thread(p)
            reply = services.slack.for_org(None).chat_postMessage(
                channel=p.review_channel_id, thread_ts=p.review_message_ts, **answer
            )
            result["answer"] = reply.get("ts")
        return result

    def weekly_report(job: Job) -> dict[str, Any]:
        from bot.report import render_png, report_data, summary_text

        channel = services.settings.manager_channel_id
        if not channel:
            raise PermanentFailure("MANAGER_CHANNEL_ID is not set")
        as_of = datetime.fromisoformat(str(job.payload["as_of"]))
        data = report_data(services.db, as_of)
        day = date.fromisoformat(str(job.payload["date"]))
        with in_channel_language(services, channel):
            title = _("Program report {date}").format(date=day.isoformat())
            comment = summary_text(data)
            chart = render_png(data)
            alt = _(
                "Chart of the program report: preregistration requests by week and status, "
                "conversion to associated, and reviews decided on time or late. The same "
                "figures are in the message."
            )
        services.slack.for_org(None).files_upload_v2(
            channel=channel,
            content=chart,
            filename=f"prereg-report-{day.isoformat()}.png",
            title=title,
            alt_txt=alt,
            initial_comment=comment,
        )
        return {"uploaded": day.isoformat()}

    registry.register(notices.INFO_REQUESTED, info_requested)
    registry.register(notices.INFO_REMINDER, info_reminder)
    registry.register(notices.INFO_EXPIRED, info_expired)
    registry.register(notices.INFO_ANSWERED, info_answered)
    registry.register(notices.REVIEW_REFRESH, refresh)
    registry.register(notices.WEEKLY_REPORT, weekly_report)


# --- listeners ------------------------------------------------------------------------------


def undecided_for_manager(
    service: Any, respond: Any, user: str, what: str, action: dict[str, Any]
) -> PreregView | None:
    """The request a review button names, if the clicker is a manager and it is still under
    review; otherwise the clicker is told why (ephemeral) and None comes back."""
    pid = parse_id(action.get("value"))
    if pid is None:
        _tell(respond, ":warning: " + _("This button does not name a request."))
        return None
    try:
        service.ensure_manager(user, what, pid)
    except Refused as refused:
        _tell(respond, f":no_entry_sign: {refused.message}")
        return None
    p = service.view(pid)
    if p is None or p.status != "under_review":
        state = _("gone") if p is None else views.status_label(p.status)
        _tell(
            respond,
            ":no_entry_sign: "
            + _("This request was already decided ({state}).").format(state=state),
        )
        return None
    return p


def register(app: Any, services: Any) -> None:
    service = services.service
    desk = desk_of(services)

    @app.action(desk_views.SEND_BACK_ACTION)
    @after_ack
    def send_back(body, action, respond, client, context) -> None:  # type: ignore[no-untyped-def]
        p = undecided_for_manager(service, respond, context["actor"], "send_back", action)
        if p is None:
            return
        client.views_open(
            trigger_id=body["trigger_id"],
            view=desk_views.send_back_modal(p, json.dumps({"id": p.id})),
        )

    @app.view(desk_views.SEND_BACK_CALLBACK)
    def question_submitted(ack, view, context) -> None:  # type: ignore[no-untyped-def]
        pid = _meta_id(view)
        if pid is None:
            ack(
                response_action="errors",
                errors={"question": _("This form lost track of its request.")},
            )
            return
        try:
            desk.send_back(context["actor"], pid, _value(view, "question"))
        except InvalidInput as invalid:
            ack(response_action="errors", errors={"question": next(iter(invalid.errors.values()))})
            return
        except (Refused, NotFound) as refused:
            ack(response_action="errors", errors={"question": refused.message})
            return
        ack()
        services.deliverer.kick()

    @app.action(desk_views.RESUBMIT_ACTION)
    @after_ack
    def open_resubmit(body, action, respond, client, context) -> None:  # type: ignore[no-untyped-def]
        pid = parse_id(action.get("value"))
        try:
            p = service.get(context["actor"], pid) if pid is not None else None
        except (Refused, NotFound) as refused:
            _tell(respond, f":no_entry_sign: {refused.message}")
            return
        if p is None or p.status != "action_required":
            state = _("gone") if p is None else views.status_label(p.status)
            _tell(
                respond,
                ":no_entry_sign: "
                + _("This request no longer waits for an answer ({state}).").format(state=state),
            )
            return
        client.views_open(
            trigger_id=body["trigger_id"],
            view=desk_views.resubmit_modal(p, json.dumps({"id": pid})),
        )

    @app.view(desk_views.RESUBMIT_CALLBACK)
    def resubmitted(ack, view, context) -> None:  # type: ignore[no-untyped-def]
        pid = _meta_id(view)
        if pid is None:
            ack(
                response_action="errors",
                errors={"answer": _("This form lost track of its request.")},
            )
            return
        try:
            p = desk.resubmit(context["actor"], pid, read_form(view), _value(view, "answer"))
        except InvalidInput as invalid:
            errors = dict(invalid.errors)
            answer = errors.pop("answer", None)
            shown = field_errors(InvalidInput(errors)) if errors else {}
            if answer:
                shown["answer"] = answer
            ack(response_action="errors", errors=shown)
            return
        except (Refused, NotFound) as refused:
            ack(response_action="errors", errors={"answer": refused.message[:MAX_ERROR]})
            return
        ack(response_action="update", view=desk_views.resubmitted_modal(p))
        services.deliverer.kick()

    def assign(respond: Any, user: str, pid: int | None, act: Any) -> None:
        if pid is None:
            _tell(respond, ":warning: " + _("This button does not name a request."))
            return
        try:
            p = act(pid)
        except (Refused, NotFound) as refused:
            _tell(respond, f":no_entry_sign: {refused.message}")
            return
        services.deliverer.kick()
        _tell(respond, desk_views.reviewer_line(p))

    @app.action(desk_views.TAKE_ACTION)
    @after_ack
    def take(action, respond, context) -> None:  # type: ignore[no-untyped-def]
        user = context["actor"]
        assign(respond, user, parse_id(action.get("value")), lambda pid: desk.take(user, pid))

    @app.action(desk_views.RELEASE_ACTION)
    @after_ack
    def release(action, respond, context) -> None:  # type: ignore[no-untyped-def]
        user = context["actor"]
        assign(respond, user, parse_id(action.get("value")), lambda pid: desk.release(user, pid))

    @app.action(desk_views.REASSIGN_ACTION)
    @after_ack
    def reassign(body, action, respond, context) -> None:  # type: ignore[no-untyped-def]
        user = context["actor"]
        block = str(action.get("block_id") or "")
        pid = parse_id(block.rpartition("_")[2])
        chosen = str(action.get("selected_user") or "")
        if not chosen:
            _tell(respond, ":warning: " + _("Choose a manager to give the case to."))
            return
        to = same_org_key(user, chosen)
        assign(respond, user, pid, lambda pid: desk.reassign(user, pid, to))

    @app.view(desk_views.APPROVE_CONFIRM_CALLBACK)
    def approve_confirmed(ack, body, view, context) -> None:  # type: ignore[no-untyped-def]
        pid = _meta_id(view)
        ack()
        if pid is not None:
            service.queue_approval(context["actor"], pid, str(view.get("id") or ""), None)
            services.deliverer.kick()

    def republish(body: Any, action: Any, client: Any, context: Any) -> None:
        from handlers.home import build_home

        page, sort = desk_views.home_page_state(action.get("value"))
        user = context["actor"]
        view = build_home(services, user, page=page, sort=sort)
        client.views_publish(user_id=body["user"]["id"], view=view)

    app.action(desk_views.HOME_PAGE_ACTION)(after_ack(republish))
    app.action(desk_views.HOME_SORT_ACTION)(after_ack(republish))


def manager_home(services: Any, used: int, page: int = 0, sort: str = "quota") -> list[dict]:
    """The managers' part of App Home, sized so the whole view stays within 100 blocks."""
    from handlers.views.home import HOME_QUEUE_LIMIT

    desk = desk_of(services)
    queue = services.service.review_queue(HOME_QUEUE_LIMIT)
    total = services.service.review_queue_total()
    room = desk_views.HOME_BLOCK_LIMIT - used - desk_views.queue_blocks_used(len(queue), total) - 6
    size = max(1, room)
    program, program_total = desk.program(sort, page * size, size)
    if not program and page > 0:
        page = 0
        program, program_total = desk.program(sort, 0, size)
    return desk_views.manager_home_blocks(
        queue, total, program, program_total, page, size, sort, services.clock.now()
    )
