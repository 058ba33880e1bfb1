"""Similar requests beside a review, on 100,000 preregistrations: the review message built with
the look-up (bot/desk.py `similar`, served by ix_preregistrations_email_domain) side by side with
the same message without it, reported as a ratio.

    python -m bench.similar [--rows 100000] [--postgres]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from sqlalchemy import insert

from bot.clock import FixedClock
from bot.desk import Desk
from bot.service import PreregistrationService
from handlers import views
from store.db import Database
from store.migrate import upgrade
from store.models import Partner, Preregistration

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
STATUSES = ("preregistered", "expired", "rejected", "deleted", "associated", "under_review")


def seed(db: Database, rows: int, partners: int = 200, domains: int = 20000) -> list[int]:
    """`rows` preregistrations over `domains` company domains; returns some under review."""
    with db.session() as s:
        s.execute(
            insert(Partner),
            [
                {
                    "name": f"Partner {i}",
                    "country": "DE",
                    "contact_email": "p@x.example",
                    "lock_version": 0,
                    "created_at": NOW,
                }
                for i in range(partners)
            ],
        )
    batch = []
    for i in range(rows):
        domain = f"company{i % domains}.example"
        status = STATUSES[i % len(STATUSES)] if i % 50 else "under_review"
        email = f"c{i}@{domain}"
        batch.append(
            {
                "partner_id": 1 + i % partners,
                "full_name": f"Customer {i}",
                "email": email,
                "email_norm": email,
                "email_domain": domain,
                "mobile": "+4915123456789",
                "send_invitation": True,
                "association_type": "reseller",
                "status": status,
                "submitted_by": "U1",
                "submitted_at": NOW - timedelta(hours=i % 4000),
                "invite_failed_attempts": 0,
                "review_due_at": NOW + timedelta(days=2),
            }
        )
    # one live claim per email (the unique index): every email is distinct here
    with db.session() as s:
        for start in range(0, len(batch), 5000):
            s.execute(insert(Preregistration), batch[start : start + 5000])
    return [i + 1 for i in range(0, rows, 50)][:200]


def timed(fn, ids: list[int]) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for pid in ids:
        start = time.perf_counter()
        fn(pid)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.postgres:
            from bench.common import scratch_postgres

            url = stack.enter_context(scratch_postgres())
        else:
            folder = stack.enter_context(TemporaryDirectory())
            url = f"sqlite:///{Path(folder) / f'similar-{uuid.uuid4().hex[:6]}.db'}"
        upgrade(url)
        db = Database(url)
        stack.callback(db.dispose)
        ids = seed(db, args.rows)
        service = PreregistrationService(db, FixedClock(NOW))
        desk = Desk(service)

        def plain(pid: int) -> None:
            views.review_request_message(service.view(pid))

        def with_similar(pid: int) -> None:
            views.review_request_message(service.view(pid), desk.similar(pid))

        for fn in (plain, with_similar):  # warm up
            timed(fn, ids[:10])
        base = timed(plain, ids)
        similar = timed(with_similar, ids)
        found = desk.similar(ids[0])
        print(
            f"{args.rows} rows ({'PostgreSQL' if args.postgres else 'SQLite'}): review message "
            f"{base * 1000:.2f} ms, with similar requests {similar * 1000:.2f} ms "
            f"(ratio {similar / base:.2f}; {len(found.others) + len(found.own)} similar shown)"
        )


if __name__ == "__main__":
    main()
