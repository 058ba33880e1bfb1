"""Benchmark: preregistrations per second end to end, beside plain INSERTs of the same rows.

End to end = a signed view_submission of the preregistration modal over HTTP to
`prereg-bot serve` until the row is stored (every rule checked, audit row and outbox row
written, one transaction). Baseline = the same rows INSERTed into `preregistrations` by the
same number of threads, one transaction per row, on the same PostgreSQL in the same run.

    .venv/bin/python -m bench.throughput [--clients 8] [--count 800]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import func, insert, select

from bench.common import scratch_postgres, start_prereg, start_slack_standin
from bot.admin import Admin
from bot.clock import SystemClock
from store.db import Database
from store.migrate import upgrade
from store.models import Preregistration

PER_PARTNER = 90  # below R4's cap of 100


def submission_body(user: str, email: str) -> str:
    def text_value(value: str) -> dict[str, object]:
        return {"value": {"type": "plain_text_input", "value": value}}

    payload = {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": user},
        "api_app_id": "A1",
        "trigger_id": f"trigger.{uuid.uuid4().hex}",
        "view": {
            "id": f"V{uuid.uuid4().hex[:12].upper()}",
            "type": "modal",
            "callback_id": "preregister",
            "private_metadata": "",
            "hash": "h",
            "state": {
                "values": {
                    "full_name": text_value("Throughput Customer"),
                    "email": text_value(email),
                    "mobile": text_value("+49 1512 3456789"),
                    "send_invitation": {
                        "value": {"type": "radio_buttons", "selected_option": {"value": "no"}}
                    },
                }
            },
        },
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def members_for(count: int) -> list[str]:
    return [f"UTHRU{i:03d}" for i in range(count // PER_PARTNER + 1)]


def end_to_end(url: str, base_url: str, clients: int, count: int) -> float:
    from tests.slackapp import sign

    members = members_for(count)
    local = threading.local()

    def one(i: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        body = submission_body(members[i // PER_PARTNER], f"e2e{i}@customer.example")
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
        response = session.post(base_url + "/slack/events", data=body, headers=headers, timeout=30)
        if response.status_code != 200 or "errors" in response.text:
            raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - start
    db = Database(url)
    with db.session() as s:
        stored = s.scalar(select(func.count()).where(Preregistration.email_norm.like("e2e%")))
    db.dispose()
    if stored != count:
        raise RuntimeError(f"{stored} rows stored, expected {count}")
    return count / elapsed


def plain_inserts(url: str, clients: int, count: int) -> float:
    db = Database(url, pool_size=clients, max_overflow=0)
    with db.session() as s:
        partner_id = s.scalar(select(Preregistration.partner_id).limit(1))
    now = datetime.now(UTC)

    def one(i: int) -> None:
        with db.engine.begin() as conn:
            conn.execute(
                insert(Preregistration.__table__).values(
                    partner_id=partner_id,
                    full_name="Throughput Customer",
                    email=f"plain{i}@customer.example",
                    email_norm=f"plain{i}@customer.example",
                    mobile="+4915123456789",
                    send_invitation=False,
                    association_type="reseller",
                    status="expired",
                    customer_country="DE",
                    submitted_by="UPLAIN",
                    submitted_at=now,
                    expires_at=now + timedelta(days=15),
                    invite_failed_attempts=0,
                )
            )

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - start
    db.dispose()
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--count", type=int, default=800)
    args = parser.parse_args()
    print("command: .venv/bin/python -m bench.throughput", *sys.argv[1:])
    workdir = Path(tempfile.mkdtemp(prefix="prereg-bench-"))
    with scratch_postgres() as url:
        upgrade(url)
        db = Database(url)
        admin = Admin(db, SystemClock())
        for i, member in enumerate(members_for(args.count)):
            admin.add_partner(f"Throughput {i}", "DE", [member], contact_email="t@bench.example")
        db.dispose()
        standin, slack_url = start_slack_standin(workdir)
        app, base_url = start_prereg(url, slack_url, workdir)
        try:
            ours = end_to_end(url, base_url, args.clients, args.count)
            rss = app.peak_rss_mib()
        finally:
            app.stop()
            standin.stop()
        plain = plain_inserts(url, args.clients, args.count)
    print(f"clients: {args.clients}, rows: {args.count}, PostgreSQL")
    print(f"end to end (signed view_submission -> stored row): {ours:8.1f} per second")
    print(f"plain INSERT, one transaction per row:             {plain:8.1f} per second")
    print(f"ratio: prereg-bot reaches {ours / plain:.2f} of the plain INSERT rate")
    print(f"peak RSS of serve (web and worker processes): {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
