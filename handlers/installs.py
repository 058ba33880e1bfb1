"""Uninstall and revoked tokens (distributed mode): the installation is marked revoked and its
tokens dropped, so nothing keeps calling Slack with a dead token; the partner's notices go to
its reserved contact email until a reinstall (handlers/reach.py)."""

from __future__ import annotations

import logging
from typing import Any

from bot.slack.after_ack import after_ack

log = logging.getLogger(__name__)


def register(app: Any, services: Any) -> None:
    if services.installation_store is None:
        return

    def revoke(context: Any) -> None:
        enterprise_id = context.enterprise_id
        team_id = None if context.is_enterprise_install else context.team_id
        services.installation_store.delete_all(enterprise_id=enterprise_id, team_id=team_id)
        if services.workspaces.record_revoked(enterprise_id, team_id):
            log.info("installation of %s revoked", enterprise_id or team_id)
        services.slack.forget(enterprise_id or team_id)

    @app.event("app_uninstalled")
    @after_ack
    def uninstalled(context: Any) -> None:
        revoke(context)

    @app.event("tokens_revoked")
    @after_ack
    def tokens_revoked(event: dict[str, Any], context: Any) -> None:
        """Only the bot's tokens matter: the app asks for no user token."""
        if (event.get("tokens") or {}).get("bot"):
            revoke(context)
