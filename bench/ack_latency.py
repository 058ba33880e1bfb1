"""Benchmark: how fast `prereg-bot serve` acknowledges Slack, beside a minimal Bolt app.

Both apps run as separate processes served the same way (on Waitress), talk to
the same Slack stand-in process, and get the same correctly signed requests from the same
client threads, alternating app by app at each concurrency level. prereg-bot runs against
PostgreSQL holding 100,000 preregistrations. Reported: p50 and p99 of the HTTP round trip
(= Slack's ack wait) for `/preregister` (opens the modal) and a manager's Approve click, at
1, 10 and 50 concurrent clients, the ratio to the baseline, and the peak RSS of `serve`.
`/preregister` is also measured on a second `serve` with PREREG_MEMBER_CACHE=false, so the
cost of reading the member's partner from the database on every request is shown too (that
row is reported, not counted against the goal: it is not how `serve` runs).

    .venv/bin/python -m bench.ack_latency [--rows 100000] [--requests 1500] [--rounds 10]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.common import (
    alternate,
    percentile,
    scratch_postgres,
    start_baseline,
    start_prereg,
    start_slack_standin,
)
from bench.seed import seed
from bot.admin import Admin
from bot.clock import SystemClock
from store.db import Database
from store.migrate import upgrade

MEMBER = "UBENCH1"
MANAGER = "UBENCHMGR"
LEVELS = (1, 10, 50)


def command_body(
    user: str, team: str = "T1", response_url: str = "http://127.0.0.1:9/response"
) -> str:
    return urllib.parse.urlencode(
        {
            "team_id": team,
            "channel_id": "CBENCH",
            "user_id": user,
            "command": "/preregister",
            "text": "",
            "api_app_id": "A1",
            "response_url": response_url,
            "trigger_id": f"trigger.{uuid.uuid4().hex}",
        }
    )


def approve_body(preregistration_id: int) -> str:
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": MANAGER},
        "api_app_id": "A1",
        "trigger_id": f"trigger.{uuid.uuid4().hex}",
        "response_url": "http://127.0.0.1:9/response",
        "container": {"type": "message", "message_ts": "1.1", "channel_id": "CMANAGERS"},
        "channel": {"id": "CMANAGERS"},
        "message": {"ts": "1.1", "text": "", "blocks": []},
        "actions": [
            {
                "action_id": "review_approve",
                "block_id": "review",
                "type": "button",
                "value": str(preregistration_id),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def prepare_database(url: str, rows: int, reviews: int) -> list[int]:
    """100,000 seeded rows, the bench partner and manager, and `reviews` rows under review."""
    upgrade(url)
    seed(url, rows)
    db = Database(url)
    admin = Admin(db, SystemClock())
    admin.add_partner("Bench partner", "DE", [MEMBER], contact_email="desk@bench.example")
    admin.add_manager(MANAGER)
    db.dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        partner_ids = [
            conn.execute(
                text(
                    "INSERT INTO partners (name, country, contact_email, lock_version, created_at)"
                    " VALUES (:n, 'DE', 'r@bench.example', 0, now()) RETURNING id"
                ),
                {"n": f"Review partner {i}"},
            ).scalar_one()
            for i in range(reviews // 90 + 1)
        ]
        ids = []
        for i in range(reviews):
            ids.append(
                conn.execute(
                    text(
                        "INSERT INTO preregistrations (partner_id, full_name, email, email_norm,"
                        " mobile, send_invitation, association_type, status, customer_country,"
                        " submitted_by, submitted_at, review_due_at, invite_failed_attempts)"
                        " VALUES (:p, 'Review customer', :e, :e, '+33612345678', false,"
                        " 'reseller', 'under_review', 'FR', 'UREVIEW', now(),"
                        " now() + interval '2 days', 0) RETURNING id"
                    ),
                    {"p": partner_ids[i // 90], "e": f"review{i}@customer.example"},
                ).scalar_one()
            )
    engine.dispose()
    return ids


def settle(url: str, timeout: float = 300.0) -> int:
    """Waits out the work `serve` does once at start: its first sweep sends every seeded
    partner's daily digest (~2,000 Slack posts). Steady state, not that burst, is measured.
    Returns how many notices went out meanwhile."""
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    quiet = 0
    try:
        while time.monotonic() < deadline and quiet < 3:
            with engine.connect() as conn:
                digests, pending = conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE kind = 'digest'),"
                        " count(*) FILTER (WHERE status = 'pending') FROM deliveries"
                    )
                ).one()
            quiet = quiet + 1 if digests and not pending else 0
            time.sleep(0.5)
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM deliveries WHERE status = 'sent'")
            ).scalar_one()
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=1500, help="per app, endpoint and level")
    parser.add_argument("--rounds", type=int, default=10, help="alternations of the apps")
    args = parser.parse_args()
    print("command: .venv/bin/python -m bench.ack_latency", *sys.argv[1:])
    workdir = Path(tempfile.mkdtemp(prefix="prereg-bench-"))
    total_reviews = (args.requests + sum(LEVELS) * args.rounds) * len(LEVELS) + 100
    with scratch_postgres() as url:
        review_ids = iter(prepare_database(url, args.rows, total_reviews))
        standin, slack_url = start_slack_standin(workdir)
        ours, ours_url = start_prereg(url, slack_url, workdir)
        # The same app with the member cache off (and no second scheduler): every /preregister
        # reads the member's partner from PostgreSQL, as on a process's first look-up.
        cold, cold_url = start_prereg(
            url,
            slack_url,
            workdir,
            {"PREREG_MEMBER_CACHE": "false", "PREREG_SCHEDULER": "false"},
            name="serve-uncached",
        )
        base, base_url = start_baseline(slack_url, workdir)
        try:
            print(f"start-up sweep settled: {settle(url)} notices sent before measuring")
            fake_ids = itertools.count(1)
            command = (lambda: command_body(MEMBER), lambda: command_body(MEMBER))
            approve = (lambda: approve_body(next(review_ids)), lambda: approve_body(next(fake_ids)))
            rows = []
            for level in LEVELS:
                for endpoint, app, (ours_body, base_body) in (
                    ("/preregister", (ours, ours_url), command),
                    ("/preregister, member cache off", (cold, cold_url), command),
                    ("Approve", (ours, ours_url), approve),
                ):
                    rows.append(
                        (endpoint, level)
                        + alternate(
                            [(base, base_url, base_body), (*app, ours_body)],
                            args.requests,
                            args.rounds,
                            level,
                        )
                    )
                    settle(url)  # the worker's share of those clicks, before the next cell
            print(
                f"database: PostgreSQL with {args.rows:,} preregistrations; "
                f"{args.requests} requests each"
            )
            print(
                "| request | clients | baseline p50 | prereg p50 | ratio "
                "| baseline p99 | prereg p99 | ratio | CPU per request (baseline / prereg web) |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            worst = 0.0
            for endpoint, level, (b, b_cpu), (o, o_cpu) in rows:
                b50, o50 = percentile(b, 50) * 1000, percentile(o, 50) * 1000
                b99, o99 = percentile(b, 99) * 1000, percentile(o, 99) * 1000
                if "cache off" not in endpoint:
                    worst = max(worst, o50 / b50, o99 / b99)
                print(
                    f"| {endpoint} | {level} | {b50:.1f} ms | {o50:.1f} ms | {o50 / b50:.2f}x "
                    f"| {b99:.1f} ms | {o99:.1f} ms | {o99 / b99:.2f}x "
                    f"| {b_cpu * 1000:.2f} / {o_cpu * 1000:.2f} ms |"
                )
            print(
                f"peak RSS: prereg-bot serve (web and worker) {ours.peak_rss_mib():.0f} MiB, "
                f"baseline {base.peak_rss_mib():.0f} MiB"
            )
            print(f"worst ratio {worst:.2f}x (goal <= 1.3x)")
        finally:
            for proc in (ours, cold, base, standin):
                proc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
