"""Benchmark: `list`, `check`, App Home (a partner's and a manager's) and the sweep at one
workspace's size (100 partners, 10,000 preregistrations) and at a hundred workspaces' (10,000
partners, 1,000,000 preregistrations), side by side in one run on PostgreSQL.

Both databases are created here (dropped at the end) and bulk-loaded with INSERT ... SELECT
generate_series: every partner has one member and ~100 preregistrations spread like a real
table (history: expired, associated, deleted, rejected; live rows not yet due; 1% under
review), each with its audit event and its sent outbox row. The sweep's due work is the same
in both (`--due` rows expiring now or in a reminder window), so only the history grows.

Each operation is a service-level call in this process (no HTTP, no Slack): what the surface's
handler asks the database and renders, timed with perf_counter.
- list: `PreregistrationService.list_customers` for a member, the default filter, first page.
- check: `PreregistrationService.check` of a free address (every rule's read).
- partner home / manager home: `handlers.home.build_home` for a member / a manager (summary,
  review queue, program overview; the Block Kit included).
- sweep (idle): `run_sweep` once the due work is done, the one-minute timer's usual run.
- sweep (due work): `run_sweep` with the `--due` rows due, once per size (it changes them).
The two sizes take turns over `--rounds`; the table gives medians and the large/small ratio
(goal: at most 1.5x). Then every statement each operation ran is EXPLAIN ANALYZEd on the large
database and any sequential scan of a table that grows with the data is printed.

    .venv/bin/python -m bench.scale [--large 1000000] [--small 10000] [--repeat 60]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import create_engine, event, text

from bench.sweep import ADMIN_URL, AT, _naive, noop_services
from bot.entry.sweep import run_sweep
from bot.wiring.app import Services
from handlers.home import build_home
from handlers.views.customers import DEFAULT_FILTER, FILTERS, PAGE_SIZE
from store.migrate import upgrade
from tests.pgdb import create_database, drop_database

PER_PARTNER = 100
MANAGERS = 5
GROWING = ("preregistrations", "audit_events", "deliveries", "partners", "partner_members")


def load(url: str, rows: int, due: int) -> None:
    """`rows` preregistrations over rows/100 partners (one member each), one audit event and
    one sent delivery per row, and `due` rows of due work (the same in every database)."""
    partners = max(1, rows // PER_PARTNER)
    at = _naive(AT)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO partners (name, country, contact_email, lock_version, created_at) "
                "SELECT 'Partner ' || g, 'DE', 'desk' || g || '@partner.example', 0, :at "
                "FROM generate_series(1, :n) g"
            ),
            {"n": partners, "at": at - timedelta(days=400)},
        )
        conn.execute(
            text(
                "INSERT INTO partner_members (slack_user_id, partner_id, created_at) "
                "SELECT 'USCALE' || id, id, created_at FROM partners"
            )
        )
        conn.execute(
            text(
                "INSERT INTO managers (slack_user_id, email, created_at) "
                "SELECT 'UMGR' || g, 'm' || g || '@vendor.example', :at "
                "FROM generate_series(1, :n) g"
            ),
            {"n": MANAGERS, "at": at - timedelta(days=400)},
        )
        # r picks the status: 40 expired, 25 associated, 15 deleted, 5 rejected, 14
        # preregistered (valid 4 to 14 days more), 1 under review; every partner (g % partners)
        # gets the mix.
        conn.execute(
            text(
                """
                INSERT INTO preregistrations (
                    partner_id, full_name, email, email_norm, email_domain, mobile,
                    send_invitation, association_type, status, customer_country, submitted_by,
                    submitted_at, expires_at, review_due_at, expired_at, associated_at,
                    deleted_at, decided_at, invite_failed_attempts)
                SELECT 1 + g % :partners, 'Customer ' || g, 'c' || g || '@d' || (g % 997)
                       || '.example', 'c' || g || '@d' || (g % 997) || '.example',
                       'd' || (g % 997) || '.example', '+4915100000000', false, 'reseller',
                       s.status, 'DE', 'USCALE' || (1 + g % :partners), s.submitted,
                       CASE WHEN s.status = 'preregistered'
                            THEN :at + interval '4 days' + (g % 864000) * interval '1 second'
                            WHEN s.status = 'under_review' THEN NULL
                            ELSE s.submitted + interval '15 days' END,
                       CASE WHEN s.status = 'under_review'
                            THEN :at + interval '1 day' + (g % 86400) * interval '1 second'
                            END,
                       CASE WHEN s.status = 'expired' THEN s.submitted + interval '15 days' END,
                       CASE WHEN s.status = 'associated' THEN s.submitted + interval '3 days' END,
                       CASE WHEN s.status = 'deleted' THEN s.submitted + interval '2 days' END,
                       CASE WHEN s.status = 'rejected' THEN s.submitted + interval '1 day' END,
                       0
                FROM generate_series(1, :rows) g,
                LATERAL (SELECT (g / :partners + g) % 100 AS r) k,
                LATERAL (SELECT
                    CASE WHEN r < 40 THEN 'expired'
                         WHEN r < 65 THEN 'associated'
                         WHEN r < 80 THEN 'deleted'
                         WHEN r < 85 THEN 'rejected'
                         WHEN r < 99 THEN 'preregistered'
                         ELSE 'under_review' END AS status,
                    :at - interval '20 days' - (g % 60) * interval '1 day'
                        - (g % 86400) * interval '1 second' AS submitted
                ) s
                """
            ),
            {"partners": partners, "rows": rows - due, "at": at},
        )
        # The due work: half expiring now, half in the 1-day reminder window.
        conn.execute(
            text(
                """
                INSERT INTO preregistrations (
                    partner_id, full_name, email, email_norm, email_domain, mobile,
                    send_invitation, association_type, status, customer_country, submitted_by,
                    submitted_at, expires_at, invite_failed_attempts)
                SELECT 1 + g % :partners, 'Due ' || g, 'due' || g || '@due.example',
                       'due' || g || '@due.example', 'due.example', '+4915100000000', false,
                       'reseller', 'preregistered', 'DE', 'USCALE' || (1 + g % :partners),
                       :at - interval '14 days',
                       CASE WHEN g % 2 = 0 THEN :at - interval '1 minute'
                            ELSE :at + interval '12 hours' END, 0
                FROM generate_series(1, :due) g
                """
            ),
            {"partners": partners, "due": due, "at": at},
        )
        conn.execute(
            text(
                "INSERT INTO audit_events (at, actor, action, result, preregistration_id,"
                " partner_id) SELECT submitted_at, submitted_by, 'preregister', 'preregistered',"
                " id, partner_id FROM preregistrations"
            )
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (kind, dedupe_key, payload, status, attempts,"
                " next_attempt_at, preregistration_id, created_at, sent_at)"
                " SELECT 'invitation_share', 'invitation_share:' || id,"
                " json_build_object('preregistration_id', id), 'sent', 1, submitted_at, id,"
                " submitted_at, submitted_at FROM preregistrations"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


# --- the operations --------------------------------------------------------------------------

MEMBER = "USCALE1"
MANAGER = "UMGR1"


def operations(services: Services) -> dict[str, Callable[[], object]]:
    service = services.service
    return {
        "list": lambda: service.list_customers(MEMBER, FILTERS[DEFAULT_FILTER], 0, PAGE_SIZE),
        "check": lambda: service.check(MEMBER, "free.customer@nowhere.example"),
        "partner home": lambda: build_home(services, MEMBER),
        "manager home": lambda: build_home(services, MANAGER),
        "sweep (idle)": lambda: run_sweep(services, AT),
    }


@dataclass
class Size:
    label: str
    rows: int
    url: str
    services: Services | None = None
    load_s: float = 0.0
    due_sweep_s: float = 0.0
    due_notices: int = 0


class Capture:
    """The distinct reads (SELECT, or WITH ... SELECT) run, with their parameters, while it is
    on. EXPLAIN ANALYZE runs them in a transaction it rolls back."""

    def __init__(self) -> None:
        self.on = False
        self.statements: dict[str, Any] = {}

    def __call__(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if self.on and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.statements.setdefault(statement, parameters)


SEQ = re.compile(r"Seq Scan on (\w+).*\n(?:.*\n)*?.*?(?:rows=(\d+))?")


def explained(url: str, statements: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(statement, plan, execution ms) of each statement, slowest first."""
    engine = create_engine(url)
    found = []
    with engine.connect() as conn:
        for statement, params in statements.items():
            trans = conn.begin()
            lines = [
                r[0]
                for r in conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + statement, params
                )
            ]
            trans.rollback()
            took = next(
                float(line.split(":")[1].split()[0])
                for line in lines
                if line.startswith("Execution Time")
            )
            plan = "\n".join(line for line in lines if not line.startswith(("Planning", "Exec")))
            found.append((statement, plan, took))
    engine.dispose()
    return sorted(found, key=lambda f: -f[2])


def is_seq_scan(plan: str) -> bool:
    return any(f"Seq Scan on {table}" in plan for table in GROWING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=60, help="timings per operation and size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plans", action="store_true", help="print every plan, not only scans")
    args = parser.parse_args(argv)
    print("command: .venv/bin/python -m bench.scale", *(argv or sys.argv[1:]))
    tag = uuid.uuid4().hex[:8]
    names = {"small": f"prereg_scale_small_{tag}", "large": f"prereg_scale_large_{tag}"}
    sizes: dict[str, Size] = {}
    try:
        for label, rows in (("small", args.small), ("large", args.large)):
            url = create_database(ADMIN_URL, names[label])
            upgrade(url)
            start = time.perf_counter()
            load(url, rows, args.due)
            sizes[label] = Size(label, rows, url, load_s=time.perf_counter() - start)
            print(
                f"loaded {rows:>9,} preregistrations, {max(1, rows // PER_PARTNER):,} partners, "
                f"audit and outbox rows in {sizes[label].load_s:.1f}s",
                flush=True,
            )
        for size in sizes.values():
            size.services = noop_services(size.url)
            start = time.perf_counter()
            report = run_sweep(size.services, AT)
            size.due_sweep_s = time.perf_counter() - start
            size.due_notices = report.delivered.sent
            print(f"{size.label}: sweep with due work: {report.summary()}", flush=True)
        timings = measure(sizes, args)
        small, large = sizes["small"], sizes["large"]
        print()
        print(
            f"| operation | {small.rows:,} rows p50 / p90 | {large.rows:,} rows p50 / p90 "
            "| ratio p50 | ratio p90 |"
        )
        print("|---|---|---|---|---|")
        for op, by_size in timings.items():
            s, lg = by_size["small"], by_size["large"]
            sp = (_pct(s, 50), _pct(s, 90))
            lp = (_pct(lg, 50), _pct(lg, 90))
            print(
                f"| {op} | {sp[0]:.2f} / {sp[1]:.2f} ms | {lp[0]:.2f} / {lp[1]:.2f} ms "
                f"| {lp[0] / sp[0]:.2f}x | {lp[1] / sp[1]:.2f}x |"
            )
        per_notice = [x.due_sweep_s / max(1, x.due_notices) * 1000 for x in (small, large)]
        print(
            f"| sweep with {args.due} due rows and a digest per partner (once) "
            f"| {small.due_sweep_s * 1000:.0f} ms ({small.due_notices} notices) "
            f"| {large.due_sweep_s * 1000:.0f} ms ({large.due_notices} notices) "
            f"| {large.due_sweep_s / small.due_sweep_s:.2f}x "
            f"| per notice {per_notice[0]:.2f} / {per_notice[1]:.2f} ms: "
            f"{per_notice[1] / per_notice[0]:.2f}x |"
        )
        print(f"\nEXPLAIN ANALYZE on the {large.rows:,}-row database:")
        assert large.services is not None
        scans = 0
        for op, fn in operations(large.services).items():
            capture = Capture()
            event.listen(large.services.db.engine, "before_cursor_execute", capture)
            capture.on = True
            fn()
            capture.on = False
            event.remove(large.services.db.engine, "before_cursor_execute", capture)
            found = explained(large.url, capture.statements)
            scanning = [f for f in found if is_seq_scan(f[1])]
            scans += len(scanning)
            print(
                f"- {op}: {len(found)} statements, {len(scanning)} with a seq scan; slowest: "
                + ", ".join(f"{took:.1f} ms" for _, _, took in found[:3])
            )
            for statement, plan, took in found[: 2 if args.plans else 1] + scanning:
                print(f"    ({took:.1f} ms) " + " ".join(statement.split())[:400])
                print("      " + plan.replace("\n", "\n      "))
        print(f"\nsequential scans of growing tables: {scans}")
    finally:
        for size in sizes.values():
            if size.services is not None:
                size.services.db.dispose()
        for name in names.values():
            drop_database(ADMIN_URL, name)
    return 0


def _pct(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100)[pct - 1] * 1000 if len(values) > 1 else values[0]


def measure(sizes: dict[str, Size], args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Seconds of each call, the sizes taking turns `rounds` times (a passing hiccup of the
    shared machine hits both)."""
    ops = {label: operations(size.services) for label, size in sizes.items()}  # type: ignore[arg-type]
    timings: dict[str, dict[str, list[float]]] = {
        op: {"small": [], "large": []} for op in ops["small"]
    }
    for label in sizes:  # warm: pools, caches, the statement cache
        for fn in ops[label].values():
            for _ in range(3):
                fn()
    per_round = max(1, args.repeat // args.rounds)
    for _ in range(args.rounds):
        for op in timings:
            for label in sizes:
                fn = ops[label][op]
                for _ in range(per_round):
                    start = time.perf_counter()
                    fn()
                    timings[op][label].append(time.perf_counter() - start)
    return timings


if __name__ == "__main__":
    sys.exit(main())
