"""Who acts in a Slack request, as a key of bot/identity.py.

Which installation authorises a request is Bolt's business (the installing team: a modal's
`view.app_installed_team_id`, else the payload's team). Who *acts* can be someone else: in a
Slack Connect channel a user of another organisation clicks the app's buttons, and their
`user.team_id` names their own team. The key is built from the actor's own team, so such a
user is never taken for a member of the installing workspace.
"""

from __future__ import annotations

from typing import Any

from bot.identity import Actor, key_of


def actor_of(body: dict[str, Any], context: Any) -> Actor | None:
    user_id = context.actor_user_id or context.user_id
    if not user_id:
        return None
    user = body.get("user")
    own_team = (user.get("team_id") if isinstance(user, dict) else None) or (
        context.actor_team_id or context.team_id
    )
    installing_team = context.team_id
    same_org = own_team is None or own_team == installing_team or context.is_enterprise_install
    enterprise = (context.actor_enterprise_id or context.enterprise_id) if same_org else None
    return Actor(user_id=user_id, team_id=own_team, enterprise_id=enterprise)


def actor_key(body: dict[str, Any], context: Any, home: str | None) -> str | None:
    actor = actor_of(body, context)
    return None if actor is None else key_of(actor, home)
