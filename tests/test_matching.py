"""bot/slack/matching.py: Bolt's listeners matched on the body directly, with the same result."""

from __future__ import annotations

import json
import re

import pytest
from slack_bolt import App, BoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.listener_matcher import builtins

from bot.slack.matching import BodyMatcher, direct_body_matchers


def _app() -> tuple[App, list[str]]:
    app = App(
        signing_secret="secret",
        authorize=lambda **_kw: AuthorizeResult(
            enterprise_id=None, team_id="T1", bot_token="xoxb-test", bot_user_id="UB", bot_id="B"
        ),
        token_verification_enabled=False,
        request_verification_enabled=False,
        process_before_response=True,
    )
    seen: list[str] = []

    @app.command("/preregister")
    def command(ack) -> None:  # type: ignore[no-untyped-def]
        ack()
        seen.append("command")

    @app.action(re.compile(r"^page_(prev|next)$"))
    def page(ack) -> None:  # type: ignore[no-untyped-def]
        ack()
        seen.append("page")

    @app.view("form")
    def form(ack) -> None:  # type: ignore[no-untyped-def]
        ack()
        seen.append("view")

    @app.event("app_home_opened")
    def home(ack) -> None:  # type: ignore[no-untyped-def]
        ack()
        seen.append("home")

    return app, seen


REQUESTS = [
    ("command", "command=%2Fpreregister&text=list&team_id=T1&user_id=U1", "command"),
    (
        "page",
        "payload="
        + json.dumps(
            {
                "type": "block_actions",
                "team": {"id": "T1"},
                "user": {"id": "U1"},
                "actions": [{"action_id": "page_next", "block_id": "b", "type": "button"}],
            }
        ),
        "page",
    ),
    (
        "unknown action",
        "payload="
        + json.dumps(
            {
                "type": "block_actions",
                "team": {"id": "T1"},
                "user": {"id": "U1"},
                "actions": [{"action_id": "page_first", "block_id": "b", "type": "button"}],
            }
        ),
        None,
    ),
    (
        "home",
        json.dumps(
            {
                "type": "event_callback",
                "team_id": "T1",
                "event_id": "Ev1",
                "event": {"type": "app_home_opened", "user": "U1", "tab": "home"},
            }
        ),
        "home",
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_the_same_listener_answers_without_building_arguments_per_listener(
    monkeypatch, name, body, expected
):
    app, seen = _app()
    assert direct_body_matchers(app) == 4
    assert all(isinstance(listener.matchers[0], BodyMatcher) for listener in app._listeners)
    built = []
    real = builtins.build_required_kwargs
    monkeypatch.setattr(
        builtins, "build_required_kwargs", lambda **kw: built.append(1) or real(**kw)
    )
    response = app.dispatch(BoltRequest(body=body))
    assert seen == ([expected] if expected else [])
    assert response.status == (200 if expected else 404)
    assert built == []  # the matchers asked for nothing but the body


def test_a_matcher_asking_for_more_than_the_body_is_left_alone():
    app, _seen = _app()

    @app.action("other", matchers=[lambda body, context: True])
    def other(ack) -> None:  # type: ignore[no-untyped-def]
        ack()

    direct_body_matchers(app)
    extra = app._listeners[-1].matchers
    assert isinstance(extra[0], BodyMatcher) and not isinstance(extra[1], BodyMatcher)
