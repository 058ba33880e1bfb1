"""The customer list (`/preregister list`) and its buttons: show/hide contact details (R11),
delete one or several (R9), Next/Previous pages.

Button values carry only view state (page, filter, shown) and the row's id. Every action asks
the service on behalf of the clicking user, so a value naming another partner's row changes
nothing: the service only finds the clicker's own partner's rows.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from bot.errors import Refused
from bot.i18n import _
from bot.privacy import record_disclosure
from bot.slack.after_ack import after_ack
from handlers import views
from handlers.ids import parse_id

log = logging.getLogger(__name__)


def parse_state(raw: str | None) -> tuple[int, str, bool, int | None]:
    """(offset, filter, shown, id) from a button value; anything malformed falls back to the
    first page of the default filter."""
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        log.warning("ignored a list button value that is not ours: %r", (raw or "")[:100])
        data = {}
    offset = data.get("o")
    offset = offset if isinstance(offset, int) and 0 <= offset <= 1_000_000 else 0
    filter_key = data.get("f")
    filter_key = filter_key if filter_key in views.FILTERS else views.DEFAULT_FILTER
    return offset, filter_key, bool(data.get("c")), parse_id(data.get("id"))


def render_list(
    services: Any,
    user: str,
    offset: int = 0,
    filter_key: str = views.DEFAULT_FILTER,
    shown: bool = False,
    notice: Sequence[str] = (),
    replace: bool = False,
) -> dict[str, Any]:
    """The user's own partner's customers, one page. Raises Refused for non-members."""
    statuses = views.FILTERS[filter_key]
    service = services.service
    page = service.list_customers(user, statuses, offset=offset, limit=views.PAGE_SIZE)
    if not page.items and page.total and offset:
        last = (page.total - 1) // views.PAGE_SIZE * views.PAGE_SIZE
        page = service.list_customers(user, statuses, offset=last, limit=views.PAGE_SIZE)
    message = views.customer_list(page, filter_key, shown, notice)
    message["replace_original"] = replace
    if shown and page.items:  # "Show contact details": who saw which rows, when
        ids = [item.id for item in page.items]
        partner_id = page.items[0].partner_id
        record_disclosure(services.db, services.clock, user, "show_contacts", ids, partner_id)
    return message


def refusal(services: Any, refused: Refused) -> dict[str, Any]:
    message = views.refusal_message(refused.message, services.service.manager_contacts())
    message["replace_original"] = False
    return message


def selected_ids(body: dict[str, Any]) -> list[int]:
    """Ids ticked in the list's checkboxes (from the message state Slack sends along)."""
    values = (body.get("state") or {}).get("values") or {}
    chosen = [
        option
        for block_id, block in values.items()
        if block_id.startswith(views.LIST_SELECT_BLOCK) and isinstance(block, dict)
        for option in (block.get(views.LIST_SELECT_ACTION) or {}).get("selected_options") or []
    ]
    ids = [parse_id(option.get("value")) for option in chosen]
    return list(dict.fromkeys(i for i in ids if i is not None))[: views.PAGE_SIZE]


def register(app: Any, services: Any) -> None:
    @after_ack
    def redraw(body, action, respond, context) -> None:  # type: ignore[no-untyped-def]
        user = context["actor"]
        offset, filter_key, shown, _unused = parse_state(action.get("value"))
        try:
            respond(render_list(services, user, offset, filter_key, shown, replace=True))
        except Refused as refused:
            respond(refusal(services, refused))

    app.action(views.LIST_TOGGLE_ACTION)(redraw)
    app.action(re.compile(rf"^{views.LIST_PAGE_ACTION}_(prev|next)$"))(redraw)

    @app.action(views.LIST_SELECT_ACTION)
    def tick(ack) -> None:  # type: ignore[no-untyped-def]
        ack()  # ticking a box changes nothing until "Delete selected"

    @app.action(views.LIST_DELETE_ACTION)
    @after_ack
    def delete_one(body, action, respond, context) -> None:  # type: ignore[no-untyped-def]
        user = context["actor"]
        offset, filter_key, shown, target = parse_state(action.get("value"))
        try:
            if target is None:
                notice = [
                    ":no_entry_sign: " + _("That button no longer works. Here is the list again.")
                ]
            else:
                results = services.service.delete(user, [target])
                notice = views.delete_results(results)
            respond(render_list(services, user, offset, filter_key, shown, notice, replace=True))
        except Refused as refused:
            respond(refusal(services, refused))

    @app.action(views.LIST_DELETE_SELECTED_ACTION)
    @after_ack
    def delete_selected(body, action, respond, context) -> None:  # type: ignore[no-untyped-def]
        user = context["actor"]
        offset, filter_key, shown, _unused = parse_state(action.get("value"))
        ids = selected_ids(body)
        try:
            if ids:
                notice = views.delete_results(services.service.delete(user, ids))
            else:
                notice = [":point_up: " + _("Tick the customers to delete first.")]
            respond(render_list(services, user, offset, filter_key, shown, notice, replace=True))
        except Refused as refused:
            respond(refusal(services, refused))
