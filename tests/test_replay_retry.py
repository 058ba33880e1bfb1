"""Slack's retry headers (`X-Slack-Retry-Num`) are outside the signature: anyone holding a
captured request can add them. They never excuse a replay; only the Events API retries, and a
retried event (same `event_id`, inside the signed body) is acknowledged and handled once."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid

import pytest

from handlers.views import LIST_TOGGLE_ACTION
from tests.slackapp import TEAM, sign
from tests.slackfixtures import MEMBER

RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
FORM = "application/x-www-form-urlencoded"


def post(app, body: str, headers: dict[str, str], content_type: str = FORM):  # type: ignore[no-untyped-def]
    return app.http.post(
        app.base_url + "/slack/events",
        data=body.encode(),
        headers={"Content-Type": content_type, **headers},
        timeout=10,
    )


def command_body(app, user: str, text: str) -> str:  # type: ignore[no-untyped-def]
    return urllib.parse.urlencode(
        {
            "team_id": TEAM["id"],
            "channel_id": "CGENERAL",
            "user_id": user,
            "command": "/preregister",
            "text": text,
            "api_app_id": "A1",
            "response_url": app.fake.response_url,
            "trigger_id": f"trigger.{uuid.uuid4().hex}",
        }
    )


@pytest.mark.reliability("attack", "replay with a forged X-Slack-Retry-Num header refused")
def test_captured_delete_replayed_as_a_retry_is_refused(app, direct, tried):
    direct.partner()
    first = direct.prereg("ceo@customer.de")
    body = command_body(app, MEMBER, "delete ceo@customer.de")
    captured = sign(body)
    assert "deleted" in json.dumps(app.seen_reply(post(app, body, captured), 0))
    assert direct.status(first.id) == "deleted"

    again = direct.prereg("ceo@customer.de")  # the customer is preregistered anew
    for headers in (RETRY, {"X-Slack-Retry-Num": "2"}, {"X-Slack-Retry-Num": "x"}):
        tried()
        replayed = post(app, body, {**captured, **headers})
        assert replayed.status_code == 401, replayed.text
    time.sleep(0.5)  # work after an ack would have run by now
    assert direct.status(again.id) == "preregistered"
    assert app.fake.responses == []  # the first was answered in its ack; the replays not at all
    assert "refused a replayed Slack request" in app.log()


@pytest.mark.reliability("attack", "replayed interaction with X-Slack-Retry-Num refused")
def test_replayed_interaction_with_a_retry_header_is_refused(app, direct, tried):
    direct.partner()
    payload = {
        "type": "block_actions",
        "team": TEAM,
        "user": {"id": MEMBER, "team_id": TEAM["id"]},
        "api_app_id": "A1",
        "trigger_id": "t",
        "response_url": app.fake.response_url,
        "actions": [{"action_id": LIST_TOGGLE_ACTION, "block_id": "b", "type": "button"}],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    captured = sign(body)
    assert post(app, body, captured).status_code == 200
    tried()
    assert post(app, body, {**captured, **RETRY}).status_code == 401


def home_opened_event(user: str) -> str:
    return json.dumps(
        {
            "token": "legacy",
            "team_id": TEAM["id"],
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10]}",
            "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": user, "tab": "home"},
        }
    )


@pytest.mark.reliability("fault", "Slack retries an Events API delivery (same event_id)")
def test_a_retried_event_is_acknowledged_and_handled_once(app, direct, tried):
    direct.partner()
    body = home_opened_event(MEMBER)
    now = int(time.time())
    first_signed = sign(body, now - 60)
    assert post(app, body, first_signed, "application/json").status_code == 200
    app.fake.wait_for("views.publish", 1)
    for attempt, at in ((1, now - 1), (2, now)):  # Slack signs each delivery anew
        tried()
        retry = {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"}
        answer = post(app, body, {**sign(body, at), **retry}, "application/json")
        assert answer.status_code == 200, answer.text
    time.sleep(1.0)  # a second publish, if any, would be out by now
    assert len(app.fake.calls_to("views.publish")) == 1
    tried()  # the first delivery itself, replayed with a retry header: a replay all the same
    assert post(app, body, {**first_signed, **RETRY}, "application/json").status_code == 401


def test_different_events_are_each_handled(app, direct):
    direct.partner()
    for _ in range(3):
        body = home_opened_event(MEMBER)
        assert post(app, body, sign(body), "application/json").status_code == 200
    app.fake.wait_for("views.publish", 3)
