"""Distributed mode end to end: partners install the app in their own workspaces by OAuth, and
every Web API call uses the token of the workspace it talks to.

Three workspaces answer on the Slack stand-in: the vendor's (managers, the review channel) and
two partners'. Each test installs them through `/slack/install` and `/slack/oauth_redirect` as
an admin's browser would, then acts over signed HTTP; the stand-in records each call's token.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pytest

from bot.identity import Actor, key_of
from bot.workspaces import Workspaces
from tests.distributed import (
    ACME_TEAM,
    BETA_TEAM,
    MANAGER,
    SELLER,
    VENDOR,
    finish_install,
    install,
    start_install,
    used,
)
from tests.fakeslack import Workspace
from tests.helpers import eventually
from tests.slackapp import MANAGER_CHANNEL
from tests.slackfixtures import Direct, modal_values


def test_install_stores_each_workspace_and_lists_it(world, distributed_app):
    listing = distributed_app.cli("workspaces", "list")
    assert listing.returncode == 0, listing.stderr
    lines = {line.split("\t")[0]: line for line in listing.stdout.splitlines()}
    assert set(lines) == {VENDOR, ACME_TEAM, BETA_TEAM}
    assert "Acme GmbH" in lines[ACME_TEAM] and "installed" in lines[ACME_TEAM]
    assert "not linked" in lines[BETA_TEAM]
    exchanged = distributed_app.fake.calls_to("oauth.v2.access")
    assert len(exchanged) == 3
    assert all(c.headers["authorization"].startswith("Basic ") for c in exchanged)


def test_each_call_uses_the_token_of_the_workspace_it_talks_to(world, distributed_app):
    app, fake = distributed_app, distributed_app.fake
    acme, vendor = world["acme"], world["vendor"]
    app.command(SELLER, team_id=ACME_TEAM)
    [opened] = fake.wait_for("views.open")
    assert opened.token == acme.token
    # a customer in another country goes to review in the vendor's channel
    response = app.view_submission(
        SELLER,
        "preregister",
        modal_values(email="client@customer.fr", mobile="+33 6 12 34 56 78"),
        team_id=ACME_TEAM,
    )
    assert response.json()["response_action"] == "update"
    [posted] = fake.wait_for(
        "chat.postMessage", where=lambda c: c.args.get("channel") == MANAGER_CHANNEL
    )
    assert posted.token == vendor.token
    direct = Direct(app.db_url)
    try:
        seller = key_of(Actor(SELLER, ACME_TEAM), VENDOR)
        [row] = direct.service.list_customers(seller).items
        eventually(lambda: direct.service.view(row.id).review_message_ts, what="review posted")
        app.block_action(
            MANAGER, "review_approve", str(row.id), channel=MANAGER_CHANNEL, team_id=VENDOR
        )
        eventually(lambda: direct.status(row.id) == "preregistered", what="approval")
    finally:
        direct.close()
    [updated] = fake.wait_for("chat.update")
    assert updated.token == vendor.token
    dms = fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == SELLER)
    assert {c.token for c in dms} == {acme.token}
    assert not used(fake, "chat.postMessage", world["beta"])


def test_the_same_user_id_in_another_workspace_is_another_person(world, distributed_app):
    app, fake = distributed_app, distributed_app.fake
    app.command(SELLER, team_id=BETA_TEAM)
    [answer] = fake.wait_for_response()
    assert "not linked to a partner" in answer["text"]
    assert fake.calls_to("views.open") == []


@pytest.mark.reliability("attack", "a user of workspace B acts with a payload naming workspace A")
def test_payload_naming_another_workspace_does_not_make_a_member(world, distributed_app, tried):
    """Slack authorises by the installing team (here Acme's), but the actor is a user of Beta
    with Acme's seller's user id: never Acme's seller."""
    app, fake = distributed_app, distributed_app.fake
    tried(2)
    response = app.view_submission(
        SELLER, "preregister", modal_values(), team_id=ACME_TEAM, user_team_id=BETA_TEAM
    )
    assert response.status_code == 200
    assert "errors" in response.json() or response.json().get("response_action") == "update"
    direct = Direct(app.db_url)
    try:
        assert direct.service.list_customers(key_of(Actor(SELLER, ACME_TEAM), VENDOR)).total == 0
    finally:
        direct.close()
    app.command(SELLER, team_id=BETA_TEAM)
    assert "not linked" in fake.wait_for_response()[0]["text"]


@pytest.mark.reliability("attack", "forged, replayed or cookie-less OAuth state; a code replayed")
def test_oauth_state_and_code_cannot_be_forged_or_replayed(world, distributed_app, tried):
    app, fake = distributed_app, distributed_app.fake
    tried(4)
    state, cookie = start_install(app)
    evil = Workspace("TEVIL", "Evil Slack")
    # no cookie: another browser finishing someone else's install
    stranger = finish_install(app, fake.install(evil), state, {})
    assert stranger.status_code == 400 and "did not start the installation" in stranger.text
    forged = finish_install(app, fake.install(evil), "forged", cookie)
    assert forged.status_code in (400, 401) and "did not complete" in forged.text
    code = fake.install(evil)
    assert finish_install(app, code, state, cookie).status_code == 200
    # the state is used up, and so is the code (with a fresh state)
    again = finish_install(app, code, state, cookie)
    assert again.status_code in (400, 401) and "did not complete" in again.text
    fresh_state, fresh_cookie = start_install(app)
    replayed = finish_install(app, code, fresh_state, fresh_cookie)
    assert replayed.status_code == 401 and "did not accept" in replayed.text
    listing = app.cli("workspaces", "list").stdout
    assert listing.count("TEVIL") == 1


@pytest.mark.reliability("attack", "requests and notices after the app is uninstalled")
def test_uninstall_falls_back_to_email_and_reinstall_restores_slack(
    world, distributed_app, smtp_server, tried
):
    app, fake = distributed_app, distributed_app.fake
    acme = world["acme"]
    tried(3)
    direct = Direct(app.db_url)
    seller = key_of(Actor(SELLER, ACME_TEAM), VENDOR)
    try:
        row = direct.prereg("anna@kunde.de", user=seller, send=False)
    finally:
        direct.close()
    fake.wait_for("files.completeUploadExternal", where=lambda c: c.token == acme.token)
    fake.revoke(acme)
    app.event({"type": "app_uninstalled"}, team_id=ACME_TEAM)
    listing = eventually(
        lambda: (out := app.cli("workspaces", "list").stdout) and "revoked" in out and out,
        what="revoked",
    )
    assert re.search(rf"{ACME_TEAM}\t.*\trevoked", listing)
    # a request from the uninstalled workspace gets a clear answer, not a 500
    response = app.command(SELLER, team_id=ACME_TEAM)
    assert response.status_code == 200
    answer = fake.wait_for_response()[0]["text"]
    assert "not installed in this Slack workspace" in answer
    assert "此 Slack 工作区未安装 prereg-bot" in answer  # no token to ask the reader's locale
    # the expiry reminder goes by email to the partner's reserved contact, never to Slack
    before = len(fake.calls)
    at = (row.expires_at - timedelta(days=1) + timedelta(minutes=1)).astimezone(UTC)
    app.sweep(at=at.isoformat())
    mail = smtp_server.mailbox.wait_for(1)
    assert mail[0].rcpt_tos == ["desk@acme.example"]
    assert mail[0].message["Subject"] == "prereg-bot: a notice for Acme GmbH"
    body = mail[0].message.get_content()
    assert body.startswith("prereg-bot cannot reach your company's Slack workspace"), body
    assert not [c for c in fake.calls[before:] if c.token == acme.token]
    # reinstalling restores Slack delivery with the new token
    assert "is now installed" in install(app, acme).text
    app.command(SELLER, team_id=ACME_TEAM)
    [opened] = fake.wait_for("views.open")
    assert opened.token == acme.token
    assert "installed" in app.cli("workspaces", "list").stdout.split(ACME_TEAM)[1].split("\n")[0]


def test_requests_do_not_call_auth_test_each_time(world, distributed_app):
    """Authorising a request reads the token from the store, but asks Slack's auth.test about
    a token once, not before every ack (docs/performance.md, distributed mode)."""
    app, fake = distributed_app, distributed_app.fake
    acme = world["acme"]
    before = len(used(fake, "auth.test", acme))  # the OAuth flow's own check
    for n in range(3):
        app.command(SELLER, team_id=ACME_TEAM)
        fake.wait_for("views.open", count=n + 1)
    assert len(used(fake, "auth.test", acme)) - before == 1


@pytest.mark.reliability("attack", "a request right after uninstall, the token's check still kept")
def test_uninstall_refuses_the_next_request_though_its_token_was_just_checked(
    world, distributed_app, tried
):
    app, fake = distributed_app, distributed_app.fake
    acme = world["acme"]
    tried(1)
    app.command(SELLER, team_id=ACME_TEAM)
    [opened] = fake.wait_for("views.open")  # auth.test's answer for Acme's token is now kept
    assert opened.token == acme.token
    app.event({"type": "app_uninstalled"}, team_id=ACME_TEAM)
    eventually(lambda: "revoked" in app.cli("workspaces", "list").stdout, what="revoked")
    response = app.command(SELLER, team_id=ACME_TEAM)
    assert response.status_code == 200
    assert "not installed in this Slack workspace" in fake.wait_for_response()[0]["text"]
    assert len(fake.calls_to("views.open")) == 1


def test_token_rotation_refreshes_for_background_work(world, distributed_app):
    """A rotating token about to expire is refreshed by the worker itself, with no request."""
    app, fake = distributed_app, distributed_app.fake
    rotating = Workspace("TROTATE", "Rotating Slack", expires_in=60)  # expires in a minute
    assert "is now installed" in install(app, rotating).text
    old_token = rotating.token
    added = app.cli(
        "partner", "add", "--name", "Rota AG", "--country", "DE",
        "--member", f"TROTATE:{SELLER}", "--contact-email", "desk@rota.example",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert app.cli("partner", "link", "--partner", "Rota AG", "--team", "TROTATE").returncode == 0
    direct = Direct(app.db_url)
    try:
        direct.prereg("jo@kunde.de", user=key_of(Actor(SELLER, "TROTATE"), VENDOR), send=False)
    finally:
        direct.close()
    [upload] = fake.wait_for("files.completeUploadExternal")
    refreshed = [c for c in fake.calls_to("oauth.v2.access") if c.args.get("grant_type")]
    assert refreshed and upload.token == rotating.token != old_token


def test_workspace_store_keeps_the_link_across_reinstall(world, distributed_app):
    direct = Direct(distributed_app.db_url)
    try:
        workspaces = Workspaces(direct.db, direct.clock)
        assert workspaces.record_revoked(None, ACME_TEAM)
        again = workspaces.record_install(
            enterprise_id=None,
            team_id=ACME_TEAM,
            name="Acme Slack",
            is_enterprise_install=False,
            installed_by=f"{ACME_TEAM}:UADMIN",
        )
        assert again.installed and again.partner_id is not None
    finally:
        direct.close()


@pytest.mark.reliability("attack", "Slack Connect: clicks by users of the other organisation")
def test_slack_connect_clicks_are_authorised_by_the_right_installation(
    world, distributed_app, tried
):
    """In a channel shared between Acme and the vendor, the app's buttons are clicked by people
    of both organisations; the click is authorised by the installation of the team the message
    belongs to, and the clicker is known by their own team."""
    app, fake = distributed_app, distributed_app.fake
    tried(3)
    direct = Direct(app.db_url)
    seller = key_of(Actor(SELLER, ACME_TEAM), VENDOR)
    try:
        row = direct.prereg("client@customer.fr", user=seller, mobile="+33 6 12 34 56 78")
        assert row.status == "under_review"
        # Acme's user whose user id equals the manager's: not the vendor's manager
        app.block_action(
            MANAGER, "review_approve", str(row.id), team_id=ACME_TEAM, user_team_id=ACME_TEAM
        )
        assert "Only ecosystem managers" in fake.wait_for_response()[0]["text"]
        assert direct.status(row.id) == "under_review"
        # the vendor's manager clicking in the shared channel of Acme's installation
        app.block_action(
            MANAGER, "review_approve", str(row.id), team_id=ACME_TEAM, user_team_id=VENDOR
        )
        eventually(lambda: direct.status(row.id) == "preregistered", what="approval")
        # a modal opened from a shared channel carries the installing team in the view
        response = app.view_submission(
            SELLER,
            "preregister",
            modal_values(email="zoe@kunde.de"),
            team_id=VENDOR,
            user_team_id=ACME_TEAM,
            app_installed_team_id=ACME_TEAM,
        )
        assert response.json()["response_action"] == "update"
        emails = {p.email for p in direct.service.list_customers(seller).items}
        assert "zoe@kunde.de" in emails
    finally:
        direct.close()


def test_an_org_wide_install_links_the_whole_grid_org(world, distributed_app):
    app, fake = distributed_app, distributed_app.fake
    org = Workspace(None, "Gamma Grid", enterprise_id="EGAMMA", is_enterprise_install=True)
    assert "is now installed in Gamma Grid" in install(app, org).text
    assert "EGAMMA (org-wide)" in app.cli("workspaces", "list").stdout
    added = app.cli(
        "partner", "add", "--name", "Gamma SA", "--country", "DE",
        "--member", f"EGAMMA:{SELLER}", "--contact-email", "desk@gamma.example",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert app.cli("partner", "link", "--partner", "Gamma SA", "--team", "EGAMMA").returncode == 0
    # the seller works in one of the org's workspaces
    app.command(SELLER, team_id="TGAMMA1", enterprise_id="EGAMMA")
    [opened] = fake.wait_for("views.open")
    assert opened.token == org.token
