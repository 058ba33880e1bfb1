"""The App Home tab: the partner's quota, counts and what expires soon; the review queue for
managers (oldest first); the managers' contact for everyone (R13)."""

from __future__ import annotations

import logging
from typing import Any

from bot.errors import Refused
from bot.slack.after_ack import after_ack
from handlers import views

log = logging.getLogger(__name__)


def build_home(services: Any, user: str) -> dict[str, Any]:
    service = services.service
    try:
        summary = service.summary(user)
    except Refused:
        summary = None
    queue = service.review_queue(views.HOME_QUEUE_LIMIT) if service.is_manager(user) else None
    return views.home_view(
        summary, queue, service.manager_contacts(), services.settings.manager_channel_id
    )


def register(app: Any, services: Any) -> None:
    @app.event("app_home_opened")
    @after_ack
    def home_opened(event, client, context) -> None:  # type: ignore[no-untyped-def]
        if event.get("tab", "home") != "home":
            return
        client.views_publish(user_id=event["user"], view=build_home(services, context["actor"]))
