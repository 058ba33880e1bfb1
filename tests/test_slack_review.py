"""Manual review (R3) and App Home end to end: the request in the manager channel, decisions by
managers only, the updated message and the DM, and the Home tab for partners and managers."""

from __future__ import annotations

import json

import pytest

from handlers import views
from tests.blockkit import assert_valid_message, assert_valid_view
from tests.helpers import eventually
from tests.slackapp import MANAGER_CHANNEL
from tests.slackfixtures import MANAGER, MEMBER, body_text, element, modal_values

ACK_SANITY_BOUND = 2.5


def message_of(call) -> dict:  # type: ignore[no-untyped-def]
    return {"text": call.args.get("text"), "blocks": call.json_arg("blocks") or []}


@pytest.fixture
def posted(app, direct):
    """A request under review, submitted through the modal and posted to the manager channel."""
    direct.partner()
    direct.manager()
    response = app.view_submission(
        MEMBER,
        "preregister",
        modal_values(email="client@customer.fr", mobile="+33 6 12 34 56 78"),
    )
    assert response.json()["response_action"] == "update"
    [call] = app.fake.wait_for(
        "chat.postMessage", where=lambda c: c.args.get("channel") == MANAGER_CHANNEL
    )
    [row] = direct.service.list_customers(MEMBER).items
    # the worker saves the message's ts just after Slack answers the post
    row = eventually(
        lambda: (v := direct.service.view(row.id)).review_message_ts and v, what="review ts"
    )
    return row, message_of(call)


def click(app, action_id: str, pid: int, user: str):  # type: ignore[no-untyped-def]
    response = app.block_action(
        user, action_id, str(pid), channel=MANAGER_CHANNEL, message_ts="1700000001.000100"
    )
    assert response.status_code == 200
    assert response.elapsed.total_seconds() < ACK_SANITY_BOUND
    return response


def test_r3_review_request_posted_with_facts_and_buttons(posted, direct):
    row, message = posted
    assert_valid_message(message)
    text = body_text(message)
    assert "Clara Customer" in text and "client@customer.fr" in text and "Acme GmbH" in text
    assert "(FR)" in text and "(DE)" in text and "Due by" in text
    approve = element(message, views.APPROVE_ACTION)
    reject = element(message, views.REJECT_ACTION)
    assert (approve["value"], approve["style"]) == (str(row.id), "primary")
    assert (reject["value"], reject["style"]) == (str(row.id), "danger")
    stored = direct.service.view(row.id)
    assert stored.review_channel_id == MANAGER_CHANNEL and stored.review_message_ts


@pytest.mark.reliability("attack", "non-manager approves or rejects (buttons, crafted reason view)")
def test_r3_non_manager_click_is_refused_and_changes_nothing(app, posted, direct, tried):
    tried(2)
    row, _ = posted
    for action in (views.APPROVE_ACTION, views.REJECT_ACTION):
        before = len(app.fake.responses)
        click(app, action, row.id, user=MEMBER)
        note = app.fake.wait_for_response(before + 1)[before]
        assert note["response_type"] == "ephemeral" and note["replace_original"] is False
        assert "Only ecosystem managers" in note["text"]
    assert direct.status(row.id) == "under_review"
    assert app.fake.calls_to("chat.update") == []
    assert app.fake.calls_to("views.open") == []


def test_r3_approve_updates_the_message_and_tells_the_submitter(app, posted, direct):
    row, _ = posted
    click(app, views.APPROVE_ACTION, row.id, user=MANAGER)
    [update] = app.fake.wait_for("chat.update")
    decided = message_of(update)
    assert_valid_message(decided)
    assert update.args["channel"] == MANAGER_CHANNEL
    assert update.args["ts"] == direct.service.view(row.id).review_message_ts
    assert f"Approved* by <@{MANAGER}> at" in body_text(decided)
    assert not [b for b in decided["blocks"] if b["type"] == "actions"]
    [dm] = app.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == MEMBER)
    assert "was approved" in dm.args["text"]
    assert_valid_message(message_of(dm))
    assert direct.status(row.id) == "preregistered"

    before = len(app.fake.responses)
    click(app, views.APPROVE_ACTION, row.id, user=MANAGER)  # a second click
    note = app.fake.wait_for_response(before + 1)[before]
    assert "already decided" in note["text"]
    assert len(app.fake.calls_to("chat.update")) == 1
    dms = [c for c in app.fake.calls_to("chat.postMessage") if c.args["channel"] == MEMBER]
    assert len(dms) == 1
    assert direct.status(row.id) == "preregistered"


@pytest.mark.reliability("attack", "non-manager approves or rejects (buttons, crafted reason view)")
def test_r3_reject_asks_a_reason_in_a_modal(app, posted, direct, tried):
    tried(1)
    row, _ = posted
    click(app, views.REJECT_ACTION, row.id, user=MANAGER)
    [opened] = app.fake.wait_for("views.open")
    modal = opened.json_arg("view")
    assert_valid_view(modal)
    metadata = modal["private_metadata"]
    assert json.loads(metadata) == {"id": row.id}

    def submit(user: str, reason: str, meta: str = metadata) -> dict:
        values = {"reason": {views.VALUE_ACTION: {"type": "plain_text_input", "value": reason}}}
        response = app.view_submission(user, views.REJECT_CALLBACK, values, private_metadata=meta)
        assert response.status_code == 200
        return response.json() if response.content else {}

    assert "reason" in submit(MANAGER, "   ")["errors"]
    refused = submit(MEMBER, "I am not a manager")
    assert "Only ecosystem managers" in refused["errors"]["reason"]
    assert "lost track" in submit(MANAGER, "x", meta="not json")["errors"]["reason"]
    assert direct.status(row.id) == "under_review"

    assert submit(MANAGER, "Outside <!channel> our market") == {}
    assert direct.status(row.id) == "rejected"
    [update] = app.fake.wait_for("chat.update")
    text = body_text(message_of(update))
    assert f"Rejected* by <@{MANAGER}>" in text
    assert "Outside &lt;!channel&gt; our market" in text
    [dm] = app.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == MEMBER)
    assert "was rejected" in dm.args["text"]
    assert "Outside &lt;!channel&gt; our market" in body_text(message_of(dm))

    late = submit(MANAGER, "again")
    assert "already decided" in late["errors"]["reason"]


def test_app_home_for_a_partner_member(app, direct):
    direct.partner()
    direct.manager()
    direct.many(3)
    app.event({"type": "app_home_opened", "user": MEMBER, "tab": "home"})
    [call] = app.fake.wait_for("views.publish")
    assert call.args["user_id"] == MEMBER
    view = call.json_arg("view")
    assert_valid_view(view)
    text = body_text(view)
    assert "3 / 100" in text
    assert "Expiring in the next 7 days" in text
    assert f"<@{MANAGER}>" in text  # R13
    assert "Review queue" not in text


def test_app_home_for_a_manager_lists_the_queue_oldest_first(app, direct):
    direct.partner()
    direct.manager()
    first = direct.prereg("first@customer.fr", mobile="+33 6 12 34 56 78", name="First")
    second = direct.prereg("second@customer.fr", mobile="+33 6 12 34 56 79", name="Second")
    assert first.status == second.status == "under_review"
    app.event({"type": "app_home_opened", "user": MANAGER, "tab": "home"})
    [call] = app.fake.wait_for("views.publish")
    view = call.json_arg("view")
    assert_valid_view(view)
    text = body_text(view)
    assert "Review queue" in text
    assert text.index("first@customer.fr") < text.index("second@customer.fr")
    assert "Quota:" not in text  # a manager is no partner's member


def test_r13_app_home_for_someone_not_set_up(app, direct):
    direct.manager()
    app.event({"type": "app_home_opened", "user": "USTRANGER", "tab": "home"})
    view = app.fake.wait_for("views.publish")[0].json_arg("view")
    assert_valid_view(view)
    assert "not set up" in body_text(view)
    assert f"<@{MANAGER}>" in body_text(view)
