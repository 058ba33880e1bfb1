"""Operating `prereg-bot serve` (issue 17): what it did, seen through `/metrics`, `/readyz`
and its logs, the way an operator's Prometheus, load balancer and log shipper see them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bot import notices
from store.migrate import upgrade
from store.models import Delivery
from tests.conftest import _migrated_pg_database
from tests.helpers import eventually
from tests.slackapp import RunningApp
from tests.slackfixtures import MEMBER, Direct

TOKEN = "metrics-token-0123456789"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def ops_app(request, fake_slack, smtp_server, tmp_path_factory) -> Iterator[RunningApp]:
    """`serve` as an operator runs it in production: metrics on, JSON logs, its own timer."""
    workdir = tmp_path_factory.mktemp("ops")
    env = {
        "METRICS_TOKEN": TOKEN,
        "LOG_FORMAT": "json",
        "PREREG_SCHEDULER": "true",
        "PREREG_SWEEP_INTERVAL_SECONDS": "1",
    }
    with ExitStack() as cleanup:
        if request.param == "sqlite":
            url = f"sqlite:///{workdir / 'ops.db'}"
            upgrade(url)
        else:
            request.getfixturevalue("pg_url")
            url = cleanup.enter_context(_migrated_pg_database("prereg_ops"))
        fake_slack.reset()
        app = RunningApp(url, fake_slack, smtp_server, workdir, env=env).start()
        cleanup.callback(app.stop)
        yield app


@pytest.fixture
def ops(ops_app, fake_slack, smtp_server) -> RunningApp:
    ops_app.clean()
    fake_slack.reset()
    if not smtp_server.running:
        smtp_server.start()
    smtp_server.mailbox.clear()
    return ops_app


def scrape(app: RunningApp) -> Samples:
    response = requests.get(
        app.base_url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- /metrics is protected ---------------------------------------------------------------------


@pytest.mark.reliability("attack", "/metrics without the bearer token refused")
def test_metrics_refuse_a_scrape_without_the_token(ops, tried):
    tried(3)
    url = ops.base_url + "/metrics"
    assert requests.get(url, timeout=5).status_code == 401
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401
    assert "prereg_" not in wrong.text
    basic = requests.get(url, headers={"Authorization": f"Basic {TOKEN}"}, timeout=5)
    assert basic.status_code == 401


@pytest.mark.reliability("attack", "/metrics without METRICS_TOKEN configured is not there")
def test_metrics_are_not_served_when_no_token_is_configured(app, tried):
    tried(1)
    response = requests.get(
        app.base_url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert response.status_code == 404
    assert "prereg_" not in response.text


# --- what the metrics say ----------------------------------------------------------------------


def test_metrics_count_slack_requests_by_surface_and_outcome(ops):
    before = scrape(ops)
    assert ops.command(MEMBER, "help").status_code == 200
    assert ops.command(MEMBER, "list everything at once please").status_code == 200
    assert ops.post_slack("command=%2Fpreregister", secret="forged").status_code == 401
    ops.event({"type": "app_home_opened", "user": MEMBER, "tab": "home"})
    after = scrape(ops)

    def delta(surface: str, outcome: str) -> float:
        name = "prereg_slack_request_seconds_count"
        labels = {"surface": surface, "outcome": outcome}
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("command:/preregister help", "2xx") == 1
    assert delta("command:/preregister list", "2xx") == 1
    assert delta("unverified", "4xx") == 1
    assert delta("event:app_home_opened", "2xx") == 1
    buckets = [
        k for k in after if k[0] == "prereg_slack_request_seconds_bucket" and ("le", "0.1") in k[1]
    ]
    assert buckets, "latency histogram buckets"


def test_metrics_show_outbox_reviews_and_preregistrations(ops):
    direct = Direct(ops.db_url)
    try:
        direct.partner()
        direct.manager()
        direct.many(2, send=True)
        direct.prereg("client@customer.fr", mobile="+33 6 12 34 56 78")  # to review
        now = datetime.now(UTC)
        with direct.db.session() as s:  # a notice due an hour ago, held by a dead sender
            s.add(
                Delivery(
                    kind=notices.DIGEST,
                    dedupe_key="digest:stuck",
                    payload={},
                    status="pending",
                    attempts=1,
                    next_attempt_at=now - timedelta(hours=1),
                    claimed_until=now + timedelta(hours=1),
                    claim_token="dead",
                    created_at=now - timedelta(hours=1),
                )
            )
        samples = scrape(ops)
    finally:
        direct.close()
    assert value(samples, "prereg_outbox_depth", kind=notices.DIGEST) == 1
    age = value(samples, "prereg_outbox_oldest_due_age_seconds", kind=notices.DIGEST)
    assert 3500 < age < 3700
    assert value(samples, "prereg_preregistrations", status="preregistered") == 2
    assert value(samples, "prereg_preregistrations", status="under_review") == 1
    assert value(samples, "prereg_reviews_open") == 1
    assert value(samples, "prereg_reviews_overdue") == 0


def test_metrics_count_deliveries_emails_sweeps_and_slack_rate_limits(ops):
    before = scrape(ops)
    ops.fake.fail("chat.postMessage", status=429, retry_after=0)
    direct = Direct(ops.db_url)
    try:
        direct.partner()
        direct.prereg("mail@customer.de", send=True)  # an invitation email
        direct.prereg("share@customer.de", send=False)  # a link and QR code posted in Slack
        eventually(lambda: ops.smtp.mailbox.messages, timeout=20, what="the invitation email")
        ops.fake.wait_for("chat.postMessage", count=2, timeout=20)  # the 429, then the post
    finally:
        direct.close()

    def delta(name: str, **labels: str) -> float:
        return value(scrape(ops), name, **labels) - value(before, name, **labels)

    eventually(
        lambda: delta("prereg_deliveries_total", kind=notices.INVITATION_SHARE, outcome="sent"),
        timeout=20,
        what="the share counted as sent",
    )
    # the relay has the email before the worker records it as sent (and counts it)
    eventually(
        lambda: delta("prereg_deliveries_total", kind=notices.INVITATION_EMAIL, outcome="sent"),
        timeout=20,
        what="the email counted as sent",
    )
    assert delta("prereg_deliveries_total", kind=notices.INVITATION_EMAIL, outcome="sent") == 1
    assert delta("prereg_emails_total", outcome="sent") == 1
    assert delta("prereg_slack_rate_limited_total", method="chat.postMessage") == 1
    eventually(
        lambda: delta("prereg_sweep_duration_seconds_count") >= 1, timeout=10, what="a sweep"
    )


# --- /readyz ---------------------------------------------------------------------------------


def test_readyz_answers_ready_when_migrated_and_the_database_answers(ops):
    response = requests.get(ops.base_url + "/readyz", timeout=5)
    assert response.status_code == 200
    assert response.text.strip() == "ready"


@pytest.mark.reliability("fault", "/readyz fails while migrations are pending or the DB is down")
def test_readyz_fails_with_one_line_while_migrations_are_pending(tmp_path, tried):
    from bot.web.health import Readiness
    from store.db import Database

    tried(2)
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    db = Database(url)
    try:
        readiness = Readiness(db)
        reason = readiness.problem()
        assert reason is not None and "migrations pending" in reason and "\n" not in reason
        upgrade(url)
        assert readiness.problem() is None
    finally:
        db.dispose()
    down = Database("postgresql+psycopg://postgres@127.0.0.1:1/none")
    try:
        assert Readiness(down).problem() == "database unavailable"
    finally:
        down.dispose()


# --- logs ------------------------------------------------------------------------------------


def log_lines(app: RunningApp) -> list[dict]:
    lines = (app.workdir / f"serve-{app.port}.log").read_text(errors="replace").splitlines()
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}") from None
    return parsed


def test_json_logs_carry_request_team_user_and_ids_but_no_personal_data(ops):
    direct = Direct(ops.db_url)
    try:
        direct.partner()
        prereg = direct.prereg("secret.person@customer.de", send=True, name="Jane Secret")
    finally:
        direct.close()
    ops.fake.fail("views.open", status=503, times=3)  # logged after the ack, in a pool thread
    ops.command(MEMBER)
    assert "deleted" in json.dumps(ops.ask(MEMBER, "delete secret.person@customer.de"))
    eventually(lambda: len(ops.fake.responses) >= 1, timeout=15, what="the form's answer")
    eventually(
        lambda: any(r.get("preregistration_id") == prereg.id for r in log_lines(ops)),
        timeout=20,
        what="a log line naming the preregistration",
    )
    time.sleep(0.5)
    records = log_lines(ops)
    text = json.dumps(records)
    assert "secret.person@customer.de" not in text and "Jane Secret" not in text
    slack = [r for r in records if r.get("request_id") and r.get("slack_user") == MEMBER]
    assert slack, "a log line from a Slack request with its ids"
    assert all(r.get("slack_team") == "T1" for r in slack)
    assert any(r.get("partner_id") for r in slack), "the partner where known"
    assert any(r.get("thread", "").startswith("after-ack") for r in slack), (
        "the work after the ack carries the request's context"
    )
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()


def test_logs_are_quiet_no_scheduler_chatter_and_no_warning_at_start(ops):
    time.sleep(2.5)  # the sweep runs every second
    text = (ops.workdir / f"serve-{ops.port}.log").read_text(errors="replace")
    assert "Running job" not in text
    assert "executed successfully" not in text
    assert "will be unused" not in text
    assert not [r for r in log_lines(ops) if r["level"] == "WARNING" and "start" in r["message"]]
