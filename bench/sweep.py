"""Benchmark: the sweep's cost grows with the due work, not with the table.

Builds two PostgreSQL databases (created here, dropped at the end) holding the same 1,000
due rows (expiring now, inside the 3-day and 1-day reminder windows, reviews due soon and
overdue) and the same partners, among 10,000 vs 1,000,000 preregistrations in all (history:
expired, associated, deleted, rejected, plus live rows not yet due, each with a sent outbox
row). Then runs `run_sweep` on both as of the same instant, side by side, and prints the
times, their ratio (goal: at most 2x) and the EXPLAIN ANALYZE plans of the due-work queries
the sweep ran, showing the partial indexes at work.

Senders are a no-op registry (every kind "sent" without Slack), so only the database cost
is measured: expire, record reminders/escalations/digests, claim and finish deliveries.

    .venv/bin/python bench/sweep.py                       # 10,000 vs 1,000,000
    .venv/bin/python bench/sweep.py --large 200000        # quicker
    PREREG_BENCH_PG=postgresql+psycopg://user@host:5432/postgres .venv/bin/python bench/sweep.py
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import notices  # noqa: E402
from bot.clock import FixedClock  # noqa: E402
from bot.entry.sweep import SweepReport, run_sweep  # noqa: E402
from bot.outbox.delivery import Deliverer, Job, SenderRegistry  # noqa: E402
from bot.service import PreregistrationService  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.slack.languages import ReaderLanguages  # noqa: E402
from bot.slack.workspaces import SlackClients  # noqa: E402
from bot.wiring.app import Services, make_client  # noqa: E402
from bot.workspaces import Workspaces  # noqa: E402
from store.db import Database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from tests.pgdb import create_database, drop_database  # noqa: E402

ADMIN_URL = os.environ.get(
    "PREREG_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
AT = datetime(2027, 3, 10, 9, 30, tzinfo=UTC)  # after the digest hour
KINDS = [v for k, v in vars(notices).items() if k.isupper() and isinstance(v, str)]
DUE_QUERY = re.compile(r"expires_at|review_due_at|next_attempt_at|dedupe_key IN|partners\.id >")


@dataclass
class Result:
    label: str
    rows: int
    load_s: float
    sweep_s: float
    idle_s: float
    report: SweepReport


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


def load(url: str, total: int, due: int, partners: int) -> None:
    """Bulk-loads with INSERT ... SELECT generate_series: `total` preregistrations, of which
    `due` are due work at AT, the rest history or live rows not yet due."""
    filler = total - due
    at = _naive(AT)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO partners (name, country, contact_email, lock_version, created_at) "
                "SELECT 'Partner ' || g, 'DE', 'desk@partner.example', 0, :at "
                "FROM generate_series(1, :n) g"
            ),
            {"n": partners, "at": at - timedelta(days=400)},
        )
        conn.execute(
            text(
                "INSERT INTO partner_members (slack_user_id, partner_id, created_at) "
                "SELECT 'UBENCH' || id, id, created_at FROM partners"
            )
        )
        # History and live-but-not-due rows. r = g % 100 picks the status.
        conn.execute(
            text(
                """
                INSERT INTO preregistrations (
                    partner_id, full_name, email, email_norm, mobile, send_invitation,
                    association_type, status, customer_country, submitted_by, submitted_at,
                    expires_at, review_due_at, expired_at, associated_at, deleted_at)
                SELECT 1 + g % :partners, 'Filler ' || g, 'f' || g || '@filler.example',
                       'f' || g || '@filler.example', '+4915100000000', true, 'reseller',
                       s.status, 'DE', 'UBENCH' || (1 + g % :partners), s.submitted,
                       CASE WHEN s.status = 'preregistered'
                            THEN :at + interval '4 days' + (g % 864000) * interval '1 second'
                            WHEN s.status = 'under_review' THEN NULL
                            ELSE s.submitted + interval '15 days' END,
                       CASE WHEN s.status = 'under_review'
                            THEN :at + interval '1 day' + (g % 86400) * interval '1 second'
                            END,
                       CASE WHEN s.status = 'expired' THEN s.submitted + interval '15 days' END,
                       CASE WHEN s.status = 'associated' THEN s.submitted + interval '3 days' END,
                       CASE WHEN s.status = 'deleted' THEN s.submitted + interval '2 days' END
                FROM generate_series(1, :filler) g,
                LATERAL (SELECT
                    CASE WHEN g % 100 < 40 THEN 'expired'
                         WHEN g % 100 < 65 THEN 'associated'
                         WHEN g % 100 < 80 THEN 'deleted'
                         WHEN g % 100 < 85 THEN 'rejected'
                         WHEN g % 100 < 99 THEN 'preregistered'
                         ELSE 'under_review' END AS status,
                    :at - interval '20 days' - (g % 365) * interval '1 day' AS submitted
                ) s
                """
            ),
            {"partners": partners, "filler": filler, "at": at},
        )
        conn.execute(
            text(
                """
                INSERT INTO deliveries (kind, dedupe_key, payload, status, attempts,
                    next_attempt_at, preregistration_id, created_at, sent_at)
                SELECT 'invitation_email', 'invitation_email:' || id,
                       json_build_object('preregistration_id', id), 'sent', 1,
                       submitted_at, id, submitted_at, submitted_at
                FROM preregistrations
                """
            )
        )
        # The due work, identical in every database: 1/4 expiring, 1/4 in the 3-day window,
        # 1/4 in the 1-day window, 1/8 reviews due soon, 1/8 overdue.
        conn.execute(
            text(
                """
                INSERT INTO preregistrations (
                    partner_id, full_name, email, email_norm, mobile, send_invitation,
                    association_type, status, customer_country, submitted_by, submitted_at,
                    expires_at, review_due_at)
                SELECT 1 + g % :partners, 'Due ' || g, 'due' || g || '@customer.example',
                       'due' || g || '@customer.example', '+4915100000000', true, 'reseller',
                       CASE WHEN g % 8 < 6 THEN 'preregistered' ELSE 'under_review' END,
                       'DE', 'UBENCH' || (1 + g % :partners), :at - interval '14 days',
                       CASE g % 8
                            WHEN 0 THEN :at - interval '1 minute' - g * interval '1 second'
                            WHEN 1 THEN :at - interval '1 minute' - g * interval '1 second'
                            WHEN 2 THEN :at + interval '2 days' + g * interval '1 second'
                            WHEN 3 THEN :at + interval '2 days' + g * interval '1 second'
                            WHEN 4 THEN :at + interval '12 hours' + g * interval '1 second'
                            WHEN 5 THEN :at + interval '12 hours' + g * interval '1 second'
                            END,
                       CASE g % 8
                            WHEN 6 THEN :at + interval '2 hours'
                            WHEN 7 THEN :at - interval '1 day'
                            END
                FROM generate_series(1, :due) g
                """
            ),
            {"partners": partners, "due": due, "at": at},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def noop_services(url: str) -> Services:
    settings = Settings(database_url=url, manager_channel_id="CBENCH")
    db = Database(url)
    clock = FixedClock(AT)
    registry = SenderRegistry()

    def noop(job: Job) -> dict[str, Any]:
        return {"bench": job.kind}

    for kind in KINDS:
        registry.register(kind, noop)
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        service=PreregistrationService(db, clock),
        registry=registry,
        deliverer=Deliverer(db, clock, registry),
        client=make_client(settings),
        slack=SlackClients(lambda token: make_client(settings, token), None),
        workspaces=Workspaces(db, clock),
        languages=ReaderLanguages(),
    )


class Capture:
    """Records the distinct due-work SELECTs a sweep runs, with their parameters."""

    def __init__(self) -> None:
        self.statements: dict[str, dict[str, Any]] = {}

    def __call__(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        where = re.split(r"\bWHERE\b", statement, maxsplit=1)[1:] or [""]
        if statement.lstrip().upper().startswith("SELECT") and DUE_QUERY.search(where[0]):
            self.statements.setdefault(statement, parameters)


def explain(url: str, capture: Capture) -> list[tuple[str, str]]:
    """EXPLAIN ANALYZE of each captured statement, in a transaction rolled back after."""
    engine = create_engine(url)
    plans = []
    with engine.connect() as conn:
        for statement, params in capture.statements.items():
            trans = conn.begin()
            rows = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + statement, params
            ).all()
            trans.rollback()
            plans.append((statement, "\n".join(r[0] for r in rows)))
    engine.dispose()
    return plans


def sweep(url: str, capture: Capture | None = None) -> tuple[float, float, SweepReport]:
    services = noop_services(url)
    if capture is not None:
        event.listen(services.db.engine, "before_cursor_execute", capture)
    try:
        with services.db.engine.connect() as conn:  # warm the pool and the catalog
            conn.execute(text("SELECT count(*) FROM partners"))
        start = time.perf_counter()
        report = run_sweep(services, AT)
        sweep_s = time.perf_counter() - start
        start = time.perf_counter()
        run_sweep(services, AT)  # nothing new is due: the steady state of a 1-minute timer
        idle_s = time.perf_counter() - start
    finally:
        services.db.dispose()
    return sweep_s, idle_s, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--partners", type=int, default=1_000)
    parser.add_argument("--quiet-plans", action="store_true", help="do not print the plans")
    args = parser.parse_args(argv)

    command = "bench/sweep.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"$ .venv/bin/python {command.strip()}")
    print(f"PostgreSQL: {ADMIN_URL.rsplit('@', 1)[-1]}; sweep as of {AT.isoformat()}")
    print(f"due rows: {args.due}; partners: {args.partners}; senders: no-op (DB cost only)\n")

    tag = uuid.uuid4().hex[:8]
    names = {"small": f"prereg_bench_small_{tag}", "large": f"prereg_bench_large_{tag}"}
    sizes = {"small": args.small, "large": args.large}
    urls: dict[str, str] = {}
    results: dict[str, Result] = {}
    capture = Capture()
    try:
        for label in ("small", "large"):
            urls[label] = create_database(ADMIN_URL, names[label])
            upgrade(urls[label])
            start = time.perf_counter()
            load(urls[label], sizes[label], args.due, args.partners)
            print(
                f"loaded {sizes[label]:>9,} preregistrations in {time.perf_counter() - start:.1f}s"
            )
            results[label] = Result(label, sizes[label], time.perf_counter() - start, 0, 0, None)  # type: ignore[arg-type]
        plans: list[tuple[str, str]] = []
        for label in ("small", "large"):
            if label == "large":  # the small run's statements, on the large table, before its run
                plans = explain(urls["large"], capture)
            sweep_s, idle_s, report = sweep(urls[label], capture if label == "small" else Capture())
            results[label].sweep_s, results[label].idle_s = sweep_s, idle_s
            results[label].report = report
    finally:
        for name in names.values():
            drop_database(ADMIN_URL, name)

    small, large = results["small"], results["large"]
    print()
    print(f"| preregistrations | sweep with {args.due} due rows | idle sweep (nothing due) |")
    print("|---:|---:|---:|")
    for r in (small, large):
        print(f"| {r.rows:,} | {r.sweep_s * 1000:.0f} ms | {r.idle_s * 1000:.1f} ms |")
    ratio = large.sweep_s / small.sweep_s
    idle_ratio = large.idle_s / small.idle_s
    print(f"\nratio large/small: sweep {ratio:.2f}x, idle {idle_ratio:.2f}x (goal: at most 2x)")
    print(f"work done (each): {small.report.summary()}")
    same = small.report == large.report
    print(f"same work in both databases: {'yes' if same else 'NO'}")
    if not args.quiet_plans:
        print(f"\nEXPLAIN ANALYZE of the due-work queries on the {large.rows:,}-row table:")
        for statement, plan in plans:
            print("\n" + " ".join(statement.split()))
            print(plan)
    unindexed = [s for s, p in plans if "Seq Scan on preregistrations" in p]
    print(f"\nsequential scans of preregistrations in those plans: {len(unindexed)}")
    return 0 if ratio <= 2.0 and same and not unindexed else 1


if __name__ == "__main__":
    sys.exit(main())
