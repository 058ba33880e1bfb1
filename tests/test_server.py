"""`prereg-bot serve` as users run it: routes, signature checks, start-up configuration."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from tests.slackapp import SIGNING_SECRET, sign


def test_healthz_answers_when_the_database_does(app):
    response = requests.get(app.base_url + "/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.reliability("attack", "forged Slack signature refused")
def test_bad_signature_is_refused_with_401(app, tried):
    tried(1)
    response = app.post_slack("command=%2Fpreregister&user_id=U1", secret="not-the-secret")
    assert response.status_code == 401
    assert app.fake.calls_to("views.open") == []


@pytest.mark.reliability("attack", "forged Slack signature refused")
def test_missing_signature_is_refused_with_401(app, tried):
    tried(1)
    response = app.http.post(
        app.base_url + "/slack/events",
        data=b"command=%2Fpreregister",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )
    assert response.status_code == 401


@pytest.mark.reliability("attack", "stale Slack timestamp (over five minutes old) refused")
def test_timestamp_older_than_five_minutes_is_refused(app, tried):
    tried(1)
    stale = int(time.time()) - 6 * 60
    response = app.post_slack("command=%2Fpreregister&user_id=U1", timestamp=stale)
    assert response.status_code == 401
    assert SIGNING_SECRET  # the body was signed correctly; only its age is wrong


@pytest.mark.reliability("bad input", "malformed Slack payloads refused cleanly (signed)")
def test_huge_body_is_refused(app, tried):
    tried(1)
    response = app.post_slack("payload=" + "x" * 2_000_000)
    assert response.status_code == 413


def test_slack_events_answers_post_only(app):
    response = app.http.get(app.base_url + "/slack/events", timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert app.http.get(app.base_url + "/slack/events/x", timeout=5).status_code == 404


def start_without(command: str, tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs `prereg-bot <command>` with no Slack or SMTP variables but those given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SMTP_"))}
    clean.update(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", **env)
    return subprocess.run(
        [sys.executable, "-m", "bot.entry.cli", command],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_required_variable_stops_startup_with_one_line(tmp_path):
    done = start_without("serve", tmp_path)
    assert done.returncode == 2
    assert (
        done.stderr.strip() == "prereg-bot: missing required environment variable SLACK_BOT_TOKEN"
    )


@pytest.mark.reliability("attack", "replayed Slack request (same signature) refused")
def test_replayed_request_is_refused(app, tried):
    body = "command=%2Fpreregister&user_id=UNOBODY&text=help&response_url=x&trigger_id=t"
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    first = app.http.post(app.base_url + "/slack/events", data=body, headers=headers, timeout=5)
    again = app.http.post(app.base_url + "/slack/events", data=body, headers=headers, timeout=5)
    tried(2)
    assert first.status_code != 401  # accepted (what it answers is the handlers' business)
    assert again.status_code == 401
    assert "replayed" in again.text
    assert "refused a replayed Slack request" in app.log()


@pytest.mark.reliability("attack", "forged Slack signature refused")
def test_forged_signatures_are_refused(app, tried):
    body = "command=%2Fpreregister&user_id=U1"
    for secret in ("", "guess", SIGNING_SECRET + "x", SIGNING_SECRET.upper()):
        tried()
        assert app.post_slack(body, secret=secret).status_code == 401
    assert "refused a Slack request with a bad or stale signature" in app.log()


def test_socket_mode_needs_the_app_token(tmp_path):
    done = start_without(
        "socket",
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        MANAGER_CHANNEL_ID="C1",
        PUBLIC_BASE_URL="http://localhost:3000",
        INVITE_SECRET="x" * 32,
        SMTP_HOST="127.0.0.1",
        SMTP_FROM="bot@example.com",
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip() == "prereg-bot: missing required environment variable SLACK_APP_TOKEN"
    )


@pytest.mark.reliability("attack", "forged Slack signature refused")
def test_a_timestamp_that_is_not_a_number_is_refused_with_401(app, tried):
    body = "command=%2Fpreregister&user_id=U1"
    for timestamp in ("soon", "1e9", "-1", "0x10", "", "1" * 400):
        tried()
        response = app.post_slack(body, timestamp=timestamp)
        assert response.status_code == 401, (timestamp, response.status_code)
    assert "refused a Slack request with a bad or stale signature" in app.log()
    assert app.fake.calls_to("views.open") == []
