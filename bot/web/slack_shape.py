"""The shape a signed Slack request must have before Bolt sees it.

Bolt's own matchers index into the payload (`body["actions"][0]`, `body["view"]["type"]`) and
raise on a payload Slack would never send, which would answer it with a 500. A request that is
signed but malformed (bad JSON, no user, no view, an empty actions list) is refused here with
a 400 and one log line instead (bot/web/slack_endpoint.py); nothing reaches a handler, so nothing
is stored.
"""

from __future__ import annotations

from typing import Any

_VIEW_TYPES = ("view_submission", "view_closed")
_USER_TYPES = ("block_actions", "view_submission", "view_closed", "shortcut", "message_action")


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _has_user(body: dict[str, Any]) -> bool:
    user = body.get("user")
    return isinstance(user, dict) and _is_str(user.get("id"))


def _state_problem(state: Any) -> str | None:
    values = state.get("values", {}) if isinstance(state, dict) else None
    if not isinstance(values, dict) or not all(
        isinstance(block, dict) and all(isinstance(v, dict) for v in block.values())
        for block in values.values()
    ):
        return "state is not a map of blocks"
    return None


def _view_problem(view: Any) -> str | None:
    if not isinstance(view, dict):
        return "no view"
    if not all(_is_str(view.get(k)) for k in ("id", "type", "callback_id")):
        return "view without id, type or callback_id"
    state_problem = _state_problem(view.get("state", {}))
    if state_problem:
        return f"view {state_problem}"
    if not isinstance(view.get("private_metadata", ""), str):
        return "private_metadata is not text"
    return None


def _interactive_problem(body: dict[str, Any]) -> str | None:
    kind = body.get("type")
    if kind in _USER_TYPES and not _has_user(body):
        return f"{kind} without a user"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions without actions"
        if not all(isinstance(a, dict) and _is_str(a.get("action_id")) for a in actions):
            return "an action without an action_id"
        if not all(isinstance(a.get("value", ""), str) for a in actions):
            return "an action value that is not text"
        if "state" in body and _state_problem(body["state"]):
            return "message state is not a map of blocks"
        for key in ("view", "container", "channel", "message", "state"):
            if key in body and not isinstance(body[key], dict):
                return f"{key} is not an object"
        if "view" in body and not _is_str(body["view"].get("type")):
            return "view without a type"
    if kind in _VIEW_TYPES:
        return _view_problem(body.get("view"))
    return None


def _event_problem(body: dict[str, Any]) -> str | None:
    event = body.get("event")
    if not isinstance(event, dict) or not _is_str(event.get("type")):
        return "event_callback without an event type"
    if event["type"] == "app_home_opened" and not _is_str(event.get("user")):
        return "app_home_opened without a user"
    return None


def _command_problem(body: dict[str, Any]) -> str | None:
    for key in ("user_id", "trigger_id"):
        if not _is_str(body.get(key)):
            return f"slash command without {key}"
    return None


def problem(body: Any) -> str | None:
    """Why this parsed request body cannot be a Slack request we handle, or None when it can."""
    if not isinstance(body, dict):
        return "payload is not a JSON object"
    if "command" in body:
        return _command_problem(body)
    if body.get("type") == "event_callback":
        return _event_problem(body)
    if "type" in body and not isinstance(body["type"], str):
        return "type is not text"
    return _interactive_problem(body)
