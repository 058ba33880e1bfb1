"""Mixed traffic from concurrent clients against `prereg-bot serve` on PostgreSQL, bounded in
time (PREREG_LOAD_SECONDS, default 20), ending with a consistent database. The driver and the
checks are bench/load.py, which runs the same for minutes."""

from __future__ import annotations

import os

import pytest

from bench.common import scratch_postgres
from bench.load import check_consistency, replay_problems, run_load, set_up
from store.migrate import upgrade
from tests.slackapp import RunningApp

SECONDS = float(os.environ.get("PREREG_LOAD_SECONDS", "20"))
CLIENTS = 6


@pytest.fixture(scope="module")
def load_app(pg_url, fake_slack, smtp_server, tmp_path_factory):  # noqa: ARG001 - pg_url: skip without PG
    fake_slack.reset()
    with scratch_postgres() as url:
        upgrade(url)
        set_up(url)
        app = RunningApp(url, fake_slack, smtp_server, tmp_path_factory.mktemp("load")).start()
        try:
            yield app
        finally:
            app.stop()


def test_audit_replay_finds_a_status_without_its_change():
    events = [
        (1, "preregister", "preregistered"),
        (1, "delete", "deleted"),
        (2, "preregister", "under_review"),
        (2, "approve", "refused:not_a_manager"),
        (3, "preregister", "preregistered"),
        (3, "approve", "preregistered"),
    ]
    problems = replay_problems(
        {1: "deleted", 2: "preregistered", 3: "preregistered", 4: "expired"}, events
    )
    assert problems == [
        "preregistration 2: audit replays to under_review, row is preregistered",
        "preregistration 3: approve -> preregistered from preregistered",
        "preregistration 4: audit replays to None, row is expired",
    ]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.reliability("load", "mixed traffic (preregister, list, approve, delete, accept)")
def test_mixed_traffic_leaves_the_database_consistent(load_app, tried):
    figures = run_load(load_app, SECONDS, CLIENTS)
    print("\n".join(figures.lines()))
    tried(figures.total)
    assert not figures.errors, figures.errors[:10]
    assert figures.total > 50 * SECONDS / 20
    for op in ("preregister", "list", "approve", "delete", "accept"):
        assert figures.latencies.get(op), f"no {op} was tried"
    assert figures.outcomes["preregister:confirmed"] and figures.outcomes["accept:associated"]
    assert figures.peak_connections <= figures.pool_bound
    assert check_consistency(load_app.db_url, figures.pool_bound) == []
    assert "Traceback" not in load_app.log()
