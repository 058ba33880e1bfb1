"""The App Home tab: the partner's quota, counts and what expires soon; the review queue for
managers (oldest first); the managers' contact for everyone (R13)."""

from __future__ import annotations

import logging
from typing import Any

from bot.errors import Refused
from bot.slack.after_ack import after_ack
from handlers import views

log = logging.getLogger(__name__)


def build_home(
    services: Any, user: str, notice: str | None = None, page: int = 0, sort: str = "quota"
) -> dict[str, Any]:
    """`notice`: a line on top, the outcome of what the viewer just did on this tab; `page`
    and `sort`: the managers' program table (handlers/desk.py)."""
    service = services.service
    try:
        summary = service.summary(user)
    except Refused:
        summary = None
    contacts = service.manager_contacts()  # every manager: whether the reader is one too
    manager = any(who == user for who, _email in contacts)
    view = views.home_view(
        summary,
        [] if manager else None,
        contacts,
        None,
        workspace=workspace_blocks(services, user, notice),
    )
    if manager:  # the managers' desk (handlers/desk.py) in place of the plain queue
        from handlers.desk import manager_home

        blocks = view["blocks"]
        start = next(
            i for i, b in enumerate(blocks) if b.get("block_id") == views.QUEUE_HEADER_BLOCK
        )
        blocks[start : len(blocks) - 2] = manager_home(services, start + 2, page, sort)
    return view


def workspace_blocks(services: Any, user: str, notice: str | None) -> list[dict[str, Any]]:
    """In a partner's own workspace (distributed mode): linking it, and who may preregister."""
    state = services.workspaces.onboarding(user) if services.settings.distributed else None
    if state is None:
        return [views.section(notice)] if notice else []
    return views.onboarding_blocks(state, notice)


def register(app: Any, services: Any) -> None:
    @app.event("app_home_opened")
    @after_ack
    def home_opened(event, client, context) -> None:  # type: ignore[no-untyped-def]
        if event.get("tab", "home") != "home":
            return
        client.views_publish(user_id=event["user"], view=build_home(services, context["actor"]))
