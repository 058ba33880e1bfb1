"""Distributed mode's test world, shared by the test modules that use it: a Slack stand-in that
answers for three workspaces (the vendor's and two partners'), the app running in distributed
mode on each database, and the OAuth dance that installs a workspace as an admin's browser does.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from contextlib import ExitStack

import pytest
import requests

from store.migrate import upgrade
from tests.conftest import _migrated_pg_database
from tests.fakeslack import FakeSlack, Workspace
from tests.slackapp import RunningApp

VENDOR = "TVENDOR"
ACME_TEAM, BETA_TEAM = "TACME", "TBETA"
MANAGER = "UMANAGER1"
SELLER = "USELLER1"  # the same user id exists in both partner workspaces: two people


@pytest.fixture(scope="module")
def multi_slack():
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def distributed_app(request, multi_slack, smtp_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("distributed")
    with ExitStack() as cleanup:
        if request.param == "sqlite":
            url = f"sqlite:///{workdir / 'app.db'}"
            upgrade(url)
        else:
            request.getfixturevalue("pg_url")
            url = cleanup.enter_context(_migrated_pg_database("prereg_dist"))
        env = {
            "SLACK_BOT_TOKEN": "",
            "SLACK_CLIENT_ID": multi_slack.client_id,
            "SLACK_CLIENT_SECRET": multi_slack.client_secret,
            "VENDOR_TEAM_ID": VENDOR,
        }
        app = RunningApp(url, multi_slack, smtp_server, workdir, env=env).start()
        cleanup.callback(app.stop)
        yield app


@pytest.fixture
def world(distributed_app, multi_slack, smtp_server):
    """Three installed workspaces, Acme linked to TACME with one picked seller, a manager in
    the vendor's workspace; Beta (TBETA) installed but not linked."""
    distributed_app.clean()
    multi_slack.reset()
    smtp_server.mailbox.clear()
    vendor = Workspace(VENDOR, "Vendor Inc")
    acme = Workspace(ACME_TEAM, "Acme Slack")
    beta = Workspace(BETA_TEAM, "Beta Slack")
    for workspace in (vendor, acme, beta):
        assert "is now installed" in install(distributed_app, workspace).text
    cli = distributed_app.cli
    added = cli(
        "partner", "add", "--name", "Acme GmbH", "--country", "DE",
        "--member", f"{ACME_TEAM}:{SELLER}", "--contact-email", "desk@acme.example",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert cli("partner", "link", "--partner", "Acme GmbH", "--team", ACME_TEAM).returncode == 0
    assert cli("manager", "add", MANAGER, "--email", "eco@vendor.example").returncode == 0
    return {"vendor": vendor, "acme": acme, "beta": beta}


def start_install(app: RunningApp) -> tuple[str, dict[str, str]]:
    """Opens "Add to Slack": the state in the authorize link, and the state cookie. Bolt marks
    the cookie Secure (as it must be in production, over HTTPS); the tests' server speaks plain
    HTTP, so the cookie is handed back by hand, as a browser would over HTTPS."""
    page = requests.get(app.base_url + "/slack/install", timeout=10)
    assert page.status_code == 200
    authorize = html.unescape(re.search(r'href="([^"]*oauth/v2/authorize[^"]*)"', page.text)[1])
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)["state"][0]
    cookie = page.headers["Set-Cookie"].split(";")[0]
    assert "Secure" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    return state, {"Cookie": cookie}


def finish_install(app: RunningApp, code: str, state: str, cookie: dict[str, str]):
    return requests.get(
        app.base_url + "/slack/oauth_redirect",
        params={"code": code, "state": state},
        headers=cookie,
        timeout=10,
    )


def install(app: RunningApp, workspace: Workspace) -> requests.Response:
    """What an admin's browser does: open "Add to Slack", approve in Slack, come back."""
    state, cookie = start_install(app)
    return finish_install(app, app.fake.install(workspace), state, cookie)


def used(fake: FakeSlack, method: str, workspace: Workspace) -> list:
    return [c for c in fake.calls_to(method) if c.token == workspace.token]
