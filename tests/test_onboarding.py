"""Onboarding a partner's workspace in Slack (issue 14), end to end over HTTP in distributed mode.

Beta (TBETA) installed the app but is linked to no partner. Its admin (the installer) asks on
App Home to link it; a manager decides in the vendor's channel; the admin then picks who in Beta
may preregister. Every Web API call is checked for the token of the workspace it talks to.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select

from store.models import LinkRequest, Partner
from tests.blockkit import assert_valid_message, assert_valid_view
from tests.distributed import ACME_TEAM, BETA_TEAM, MANAGER, SELLER, VENDOR, used
from tests.fakeslack import Call, FakeSlack
from tests.helpers import eventually
from tests.slackapp import MANAGER_CHANNEL, RunningApp
from tests.slackfixtures import Direct, element

ADMIN = "UADMIN"  # installed the app in Beta (and in Acme: another person there)
PICKED, OTHER = "UPICKED1", "UOTHER1"
MANAGER2 = "UMANAGER2"


def text(value: str) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


def link_values(name="Beta Ltd", country="GB", email="desk@beta.example", mobile=""):  # type: ignore[no-untyped-def]
    return {
        "name": text(name),
        "country": text(country),
        "contact_email": text(email),
        "contact_mobile": text(mobile),
    }


def open_home(app: RunningApp, user: str, team: str) -> Call:
    """The user opens the app's Home tab; returns the views.publish that answered it."""
    fake = app.fake
    mine = lambda c: c.args.get("user_id") == user  # noqa: E731
    before = len([c for c in fake.calls_to("views.publish") if mine(c)])
    event = {"type": "app_home_opened", "user": user, "tab": "home", "channel": "D1"}
    assert app.event(event, team_id=team).status_code == 200
    published = fake.wait_for("views.publish", count=before + 1, where=mine)[-1]
    assert_valid_view(published.json_arg("view"))
    return published


def home_text(call: Call) -> str:
    return json.dumps(call.json_arg("view"), ensure_ascii=False)


def responses_after(fake: FakeSlack, before: int) -> list[dict[str, Any]]:
    return fake.wait_for_response(before + 1)[before:]


def manager_posts(fake: FakeSlack) -> list[Call]:
    return [
        c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == MANAGER_CHANNEL
    ]


def request_link(app: RunningApp, **values: str) -> tuple[Call, dict[str, Any]]:
    """Beta's admin sends a link request; returns the manager-channel post and its message."""
    response = app.view_submission(ADMIN, "link_request", link_values(**values), team_id=BETA_TEAM)
    assert response.json()["response_action"] == "update", response.text
    # (a token the app still holds from before the world was reinstalled is refused first)
    [post] = app.fake.wait_for(
        "chat.postMessage",
        where=lambda c: c.args.get("channel") == MANAGER_CHANNEL and c.token in app.fake.tokens,
    )
    message = {"text": post.args.get("text"), "blocks": post.json_arg("blocks")}
    assert_valid_message(message)
    eventually(lambda: posted_ts(app), what="where the request was posted, recorded")
    return post, message


def posted_ts(app: RunningApp) -> str | None:
    direct = Direct(app.db_url)
    try:
        with direct.db.session() as s:
            return s.scalar(select(LinkRequest.review_message_ts))
    finally:
        direct.close()


def count(app: RunningApp, model: type) -> int:
    direct = Direct(app.db_url)
    try:
        with direct.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        direct.close()


def dms_to(fake: FakeSlack, user: str) -> list[Call]:
    """Messages to `user` that Slack took (a token from before the reinstall is refused)."""
    return [
        c
        for c in fake.calls_to("chat.postMessage")
        if c.args.get("channel") == user and c.token in fake.tokens
    ]


def save_policy(app: RunningApp, mode: str, users: list[str]) -> Call:
    """Beta's admin presses Save under "Who may preregister"; returns the Home redrawn."""
    fake = app.fake
    mine = lambda c: c.args.get("user_id") == ADMIN  # noqa: E731
    before = len([c for c in fake.calls_to("views.publish") if mine(c)])
    state = {
        "values": {
            "policy_mode": {"value": {"type": "radio_buttons", "selected_option": {"value": mode}}},
            "policy_picked": {"value": {"type": "multi_users_select", "selected_users": users}},
        }
    }
    view = {"id": "VHOME", "type": "home", "callback_id": "home", "state": state}
    app.block_action(ADMIN, "policy_save", "1", container_type="view", view=view, team_id=BETA_TEAM)
    published = fake.wait_for("views.publish", count=before + 1, where=mine)[-1]
    assert_valid_view(published.json_arg("view"))
    return published


def preregister(app: RunningApp, user: str, team: str) -> str | Call:
    """`/preregister` from `user` of `team`: the form opened (its views.open), or the refusal."""
    fake = app.fake
    opened = len(fake.calls_to("views.open"))
    answered = len(fake.responses)
    app.command(user, team_id=team)

    def outcome():  # type: ignore[no-untyped-def]
        if len(fake.calls_to("views.open")) > opened:
            return fake.calls_to("views.open")[-1]
        if len(fake.responses) > answered:
            return fake.responses[-1]["text"]
        return None

    return eventually(outcome, what="/preregister answered")


def test_admin_links_beta_and_picks_who_may_preregister(world, distributed_app):
    app, fake = distributed_app, distributed_app.fake
    beta, vendor = world["beta"], world["vendor"]
    # the admin sees the link button, in Beta's own workspace with Beta's token
    home = open_home(app, ADMIN, BETA_TEAM)
    assert home.token == beta.token
    assert "link_open" in home_text(home) and "Link this workspace" in home_text(home)
    # anyone else in Beta is told whom to ask, with the managers' contacts (R13)
    other_home = open_home(app, OTHER, BETA_TEAM)
    assert "link_open" not in home_text(other_home)
    assert "not linked to a partner yet" in home_text(other_home)
    assert f"<@{ADMIN}>" in home_text(other_home) and "eco@vendor.example" in home_text(other_home)
    # the button opens the modal in Beta
    app.block_action(ADMIN, "link_open", "1", container_type="view", team_id=BETA_TEAM)
    [opened] = fake.wait_for("views.open")
    assert opened.token == beta.token
    assert opened.json_arg("view")["callback_id"] == "link_request"
    assert_valid_view(opened.json_arg("view"))
    # a bad email is an inline error, and nothing is stored or posted
    bad = app.view_submission(
        ADMIN, "link_request", link_values(email="not-an-email"), team_id=BETA_TEAM
    )
    assert bad.json()["response_action"] == "errors"
    assert "contact_email" in bad.json()["errors"]
    neither = app.view_submission(
        ADMIN, "link_request", link_values(email="", mobile=""), team_id=BETA_TEAM
    )
    assert "email or mobile" in neither.json()["errors"]["contact_email"]
    assert count(app, LinkRequest) == 0
    # a good request goes to the manager channel with the vendor's token, user text escaped
    post, message = request_link(app, name="Beta <Ltd> & Co")
    assert post.token == vendor.token
    # ... except in the buttons' accessibility labels: plain text a screen reader says as it is
    buttons = [
        e for b in message["blocks"] for e in b.get("elements", []) if e.get("type") == "button"
    ]
    labels = [b.pop("accessibility_label") for b in buttons]
    assert labels == [
        f"{verb} linking Beta Slack for Beta <Ltd> & Co" for verb in ("Approve", "Reject")
    ]
    assert "Beta &lt;Ltd&gt; &amp; Co" in json.dumps(message) and "<Ltd>" not in json.dumps(message)
    approve = element(message, "link_approve")
    assert element(message, "link_pick_partner")["options"][0]["text"]["text"] == "Acme GmbH"
    # a second request while one is pending says so
    again = app.view_submission(ADMIN, "link_request", link_values(), team_id=BETA_TEAM)
    assert "already waiting" in again.json()["errors"]["name"]
    assert count(app, LinkRequest) == 1
    # someone who is not a registered manager cannot decide
    before = len(fake.responses)
    app.block_action(
        "UNOBODY", "link_approve", approve["value"], channel=MANAGER_CHANNEL, team_id=VENDOR
    )
    [refusal] = responses_after(fake, before)
    assert "Only ecosystem managers" in refusal["text"] and refusal["response_type"] == "ephemeral"
    assert "not linked" in app.cli("workspaces", "list").stdout.split(BETA_TEAM)[1].split("\n")[0]
    # a manager approves: the partner is created and linked
    app.block_action(
        MANAGER, "link_approve", approve["value"], channel=MANAGER_CHANNEL, team_id=VENDOR
    )
    line = eventually(
        lambda: next(
            (
                ln
                for ln in app.cli("workspaces", "list").stdout.splitlines()
                if ln.startswith(BETA_TEAM) and "Beta <Ltd> & Co" in ln
            ),
            None,
        ),
        what="Beta linked",
    )
    assert "installed" in line
    partners = app.cli("partner", "list").stdout
    assert "Beta <Ltd> & Co\tGB\tdesk@beta.example" in partners
    # the manager message is updated: who decided, no buttons left
    [updated] = fake.wait_for("chat.update", where=lambda c: c.token in fake.tokens)
    assert updated.token == vendor.token
    blocks = updated.json_arg("blocks")
    assert not [b for b in blocks if b["type"] == "actions"]
    assert "Approved" in json.dumps(blocks) and f"<@{MANAGER}>" in json.dumps(blocks)
    assert_valid_message({"text": updated.args.get("text"), "blocks": blocks})
    # the requester is told in Beta, with Beta's token, what to do next
    [dm] = eventually(lambda: dms_to(fake, ADMIN), what="DM to the requester")
    assert dm.token == beta.token and "now linked" in dm.args["text"]
    assert "Home tab" in json.dumps(dm.json_arg("blocks"))
    # the admin's Home now offers "Who may preregister"
    home = open_home(app, ADMIN, BETA_TEAM)
    assert "Who may preregister" in home_text(home) and "policy_save" in home_text(home)
    # the admin picks one person: that person gets the form, another Beta user does not
    saved = save_policy(app, "picked", [PICKED])
    assert "Saved" in home_text(saved) and saved.token == beta.token
    form = preregister(app, PICKED, BETA_TEAM)
    assert isinstance(form, Call) and form.token == beta.token
    assert form.json_arg("view")["callback_id"] == "preregister"
    refused = preregister(app, OTHER, BETA_TEAM)
    assert isinstance(refused, str) and "has not added you" in refused
    # the same user id in Acme is another person, and Acme's own member is untouched
    acme_twin = preregister(app, PICKED, ACME_TEAM)
    assert isinstance(acme_twin, str) and "has not added you" in acme_twin
    acme_seller = preregister(app, SELLER, ACME_TEAM)
    assert isinstance(acme_seller, Call) and acme_seller.token == world["acme"].token
    # "everyone" lets the other Beta user in; Acme's twin still not
    save_policy(app, "everyone", [PICKED])
    form = preregister(app, OTHER, BETA_TEAM)
    assert isinstance(form, Call) and form.token == beta.token
    assert isinstance(preregister(app, PICKED, ACME_TEAM), str)
    # dropping the picked person removes only them: the partner keeps no Beta member
    save_policy(app, "everyone", [])
    members = app.cli("partner", "list").stdout.split("Beta <Ltd> & Co")[1].split("\n")[0]
    assert f"{BETA_TEAM}:{PICKED}" not in members
    assert f"{ACME_TEAM}:{SELLER}" in app.cli("partner", "list").stdout


def test_manager_rejects_with_a_reason(world, distributed_app):
    app, fake = distributed_app, distributed_app.fake
    beta, vendor = world["beta"], world["vendor"]
    post, message = request_link(app)
    reject = element(message, "link_reject")
    app.block_action(
        MANAGER, "link_reject", reject["value"], channel=MANAGER_CHANNEL, team_id=VENDOR
    )
    [modal] = fake.wait_for("views.open")
    assert modal.token == vendor.token
    view = modal.json_arg("view")
    assert_valid_view(view)
    response = app.view_submission(
        MANAGER,
        "link_reject",
        {"reason": text("We could not find <Beta> in our records")},
        private_metadata=view["private_metadata"],
        team_id=VENDOR,
    )
    assert response.status_code == 200 and not response.text.strip("{}")
    [updated] = fake.wait_for("chat.update", where=lambda c: c.token in fake.tokens)
    assert updated.token == vendor.token and "Rejected" in updated.args["text"]
    assert not [b for b in updated.json_arg("blocks") if b["type"] == "actions"]
    [dm] = eventually(lambda: dms_to(fake, ADMIN), what="DM to the requester")
    assert dm.token == beta.token and "rejected" in dm.args["text"]
    assert "&lt;Beta&gt; in our records" in json.dumps(dm.json_arg("blocks"))
    assert count(app, Partner) == 1  # Acme only
    assert "not linked" in app.cli("workspaces", "list").stdout.split(BETA_TEAM)[1].split("\n")[0]
    # the admin may ask again
    assert "link_open" in home_text(open_home(app, ADMIN, BETA_TEAM))


def test_two_managers_approving_at_once_decide_once(world, distributed_app):
    app, fake = distributed_app, distributed_app.fake
    assert app.cli("manager", "add", MANAGER2).returncode == 0
    _, message = request_link(app)
    value = element(message, "link_approve")["value"]

    def click(manager: str) -> int:
        return app.block_action(
            manager, "link_approve", value, channel=MANAGER_CHANNEL, team_id=VENDOR
        ).status_code

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(click, [MANAGER, MANAGER2])) == [200, 200]
    [loser] = fake.wait_for_response(1)
    assert "already decided: approved" in loser["text"]
    eventually(lambda: dms_to(fake, ADMIN), what="DM to the requester")
    app.sweep()  # anything still due is delivered now: nothing more may come
    assert count(app, Partner) == 2  # Acme and Beta
    assert len(dms_to(fake, ADMIN)) == 1
    assert len([c for c in fake.calls_to("chat.update") if c.token in fake.tokens]) == 1
    assert not used(fake, "chat.postMessage", world["acme"])


def test_manager_links_to_an_existing_partner_picked_in_the_menu(world, distributed_app):
    app, fake = distributed_app, distributed_app.fake
    _, message = request_link(app, name="Acme UK")
    value = element(message, "link_approve")["value"]
    [acme] = element(message, "link_pick_partner")["options"]
    picked = {"type": "static_select", "selected_option": {"value": acme["value"]}}
    state = {"values": {f"link_{value}": {"link_pick_partner": picked}}}
    app.block_action(
        MANAGER, "link_approve", value, channel=MANAGER_CHANNEL, team_id=VENDOR, state=state
    )
    line = eventually(
        lambda: next(
            (
                ln
                for ln in app.cli("workspaces", "list").stdout.splitlines()
                if ln.startswith(BETA_TEAM) and "Acme GmbH" in ln
            ),
            None,
        ),
        what="Beta linked to Acme GmbH",
    )
    assert "installed" in line
    assert count(app, Partner) == 1
    [dm] = eventually(lambda: dms_to(fake, ADMIN), what="DM to the requester")
    assert "Acme GmbH" in dm.args["text"] and dm.token == world["beta"].token


def test_link_request_in_the_channel_language_and_the_dm_in_the_requesters(world, distributed_app):
    """The managers set their channel to Chinese (`/preregister language zh` there): the post
    and its decided form are in Chinese; Beta's admin, whose Slack is in English, is told in
    English."""
    app, fake = distributed_app, distributed_app.fake
    reply = app.ask(MANAGER, "language zh", channel=MANAGER_CHANNEL, team_id=VENDOR)
    assert "简体中文" in reply["text"]
    post, message = request_link(app)
    assert "关联申请" in message["text"] and "批准" in json.dumps(message, ensure_ascii=False)
    reject = element(message, "link_reject")
    app.block_action(
        MANAGER, "link_reject", reject["value"], channel=MANAGER_CHANNEL, team_id=VENDOR
    )
    [modal] = fake.wait_for("views.open")
    app.view_submission(
        MANAGER,
        "link_reject",
        {"reason": text("缺少合同")},
        private_metadata=modal.json_arg("view")["private_metadata"],
        team_id=VENDOR,
    )
    [updated] = fake.wait_for("chat.update", where=lambda c: c.token in fake.tokens)
    assert "已拒绝" in updated.args["text"]
    [dm] = eventually(lambda: dms_to(fake, ADMIN), what="DM to the requester")
    assert "was rejected" in dm.args["text"]
