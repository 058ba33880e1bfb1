"""Mixed traffic against `prereg-bot serve` on PostgreSQL, then a consistency check.

Concurrent clients preregister (signed view_submission), list (/preregister list), approve
(a manager's click), delete (the list's Delete button) and accept invitations (GET and POST
/invite/<token> with the CSRF form), for a bounded time. Afterwards the database must hold:
no customer claimed twice, no partner over 100 live, an audit trail that replays to every
preregistration's status, and no leaked or idle-in-transaction connections.

    .venv/bin/python -m bench.load --seconds 180 --clients 8

tests/test_load.py runs the same for ~20 s (PREREG_LOAD_SECONDS overrides).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from bot.admin import Admin
from bot.clock import SystemClock
from bot.invitations import Invitations
from bot.service import PreregistrationService
from handlers import views
from store.db import Database, make_engine
from store.migrate import upgrade
from store.models import QUOTA_STATUSES
from tests.slackapp import INVITE_SECRET, MANAGER_CHANNEL, RunningApp
from tests.slackfixtures import modal_values

MANAGER = "ULOADMGR"
PARTNERS = 3  # few enough that R4's cap of 100 live is reached under load
MEMBERS_PER_PARTNER = 2
CUSTOMERS = 900  # shared pool of addresses: partners compete for the same customers
# Accepted invitations keep their customer for good; a long run needs a larger pool.
CUSTOMERS_PER_SECOND = 40
CHECKER = "prereg-load-check"
OPS = {"preregister": 40, "list": 15, "approve": 10, "delete": 15, "accept": 20}

# What each audited action does to a preregistration: allowed previous statuses, new status.
TRANSITIONS = {
    "approve": ({"under_review"}, "preregistered"),
    "reject": ({"under_review"}, "rejected"),
    "delete": ({"preregistered", "rejected", "expired"}, "deleted"),
    "associate": ({"preregistered"}, "associated"),
    "expire": ({"preregistered"}, "expired"),
}
NO_STATE_CHANGE = {"request_invitation"}


def member(partner: int, n: int) -> str:
    return f"ULOAD{partner}M{n}"


@dataclass
class Figures:
    seconds: float = 0.0
    clients: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    peak_connections: int = 0
    pool_bound: int = 0

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def lines(self) -> list[str]:
        out = [
            f"{self.clients} clients for {self.seconds:.1f} s: {self.total} requests "
            f"({self.total / max(self.seconds, 1e-9):.1f}/s), {len(self.errors)} errors",
        ]
        for op in OPS:
            values = sorted(self.latencies.get(op, []))
            if not values:
                continue
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            out.append(
                f"  {op:<12} {len(values):>6}  p50 {statistics.median(values) * 1000:7.1f} ms"
                f"  p99 {p99 * 1000:7.1f} ms"
            )
        out.append("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())))
        out.append(
            f"  PostgreSQL connections of the app: peak {self.peak_connections} "
            f"(pool bound {self.pool_bound})"
        )
        return out


def pool_bound(db_url: str) -> int:
    """The most connections one `serve` process may open (its pool's size plus overflow)."""
    engine = make_engine(db_url)
    try:
        return int(engine.pool.size() + engine.pool._max_overflow)  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def checker_engine(db_url: str):  # type: ignore[no-untyped-def]
    """The load run's own connections are named, so they are not counted as the app's."""
    return create_engine(
        Database(db_url).url, connect_args={"application_name": CHECKER}, pool_size=2
    )


def app_connections(engine, db_url: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(state, application_name) of every connection to the app's database but ours."""
    name = db_url.rsplit("/", 1)[1]
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT coalesce(state, ''), application_name FROM pg_stat_activity "
                "WHERE datname = :n AND application_name <> :me AND pid <> pg_backend_pid()"
            ),
            {"n": name, "me": CHECKER},
        ).all()
    return [(r[0], r[1]) for r in rows]


def set_up(db_url: str) -> None:
    db = Database(db_url)
    admin = Admin(db, SystemClock())
    for p in range(PARTNERS):
        admin.add_partner(
            f"Load partner {p}",
            "DE",
            [member(p, n) for n in range(MEMBERS_PER_PARTNER)],
            contact_email=f"desk{p}@load.example",
        )
    admin.add_manager(MANAGER, "eco@vendor.example")
    db.dispose()


class Client:
    """One simulated user session: picks an operation, sends it, records what came back."""

    def __init__(
        self, app: RunningApp, n: int, figures: Figures, lock: threading.Lock, customers: int
    ) -> None:
        self.customers = customers
        self.app = copy.copy(app)
        self.app.http = requests.Session()
        self.rng = random.Random(1000 + n)
        self.n = n
        self.figures = figures
        self.lock = lock
        self.engine = checker_engine(app.db_url)
        self.service = PreregistrationService(Database(app.db_url), SystemClock())
        self.invitations = Invitations(self.service, INVITE_SECRET, app.base_url)
        self.seq = 0

    def close(self) -> None:
        self.engine.dispose()
        self.service.db.dispose()

    def ids(self, sql: str, **params: object) -> list[int]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(text(sql), params)]

    def record(self, op: str, took: float, outcome: str, error: str | None = None) -> None:
        with self.lock:
            self.figures.latencies[op].append(took)
            self.figures.outcomes[f"{op}:{outcome}"] += 1
            if error:
                self.figures.errors.append(f"{op}: {error}")

    def run(self, until: float) -> None:
        ops, weights = list(OPS), list(OPS.values())
        while time.monotonic() < until:
            op = self.rng.choices(ops, weights)[0]
            start = time.monotonic()
            try:
                outcome = getattr(self, op)()
            except requests.RequestException as exc:
                self.record(op, time.monotonic() - start, "exception", f"{type(exc).__name__}")
                continue
            if outcome is None:
                continue
            status, label = outcome
            error = f"HTTP {status}" if status >= 500 or label == "unexpected" else None
            self.record(op, time.monotonic() - start, label, error)

    # --- operations: (HTTP status, outcome label), or None when there was nothing to do -----

    def preregister(self) -> tuple[int, str]:
        self.seq += 1
        user = member(self.rng.randrange(PARTNERS), self.rng.randrange(MEMBERS_PER_PARTNER))
        email = f"load{self.rng.randrange(self.customers)}@customer.de"
        mobile = "+33 6 12 34 56 78" if self.rng.random() < 0.2 else "+49 1512 3456789"
        values = modal_values(
            name=f"Load {self.seq}", email=email, mobile=mobile, send=self.rng.choice(["yes", "no"])
        )
        response = self.app.view_submission(
            user, "preregister", values, view_id=f"VLOAD{self.n}X{self.seq}"
        )
        if response.status_code != 200:
            return response.status_code, "unexpected"
        body = response.json()
        if body.get("response_action") == "errors":
            return 200, "refused"
        if (body.get("view") or {}).get("callback_id") == "preregister_done":
            return 200, "confirmed"
        return 200, "unexpected"

    def list(self) -> tuple[int, str]:
        user = member(self.rng.randrange(PARTNERS), self.rng.randrange(MEMBERS_PER_PARTNER))
        response = self.app.command(user, self.rng.choice(["list", "list all", "list review"]))
        return response.status_code, "ok" if response.status_code == 200 else "unexpected"

    def approve(self) -> tuple[int, str] | None:
        ids = self.ids(
            "SELECT id FROM preregistrations WHERE status = 'under_review' "
            "ORDER BY random() LIMIT 1"
        )
        if not ids:
            return None
        response = self.app.block_action(
            MANAGER, views.APPROVE_ACTION, str(ids[0]), channel=MANAGER_CHANNEL
        )
        return response.status_code, "ok" if response.status_code == 200 else "unexpected"

    def delete(self) -> tuple[int, str] | None:
        rows = self.ids(
            "SELECT id FROM preregistrations WHERE status IN ('preregistered', 'rejected', "
            "'expired') ORDER BY random() LIMIT 1"
        )
        if not rows:
            return None
        with self.engine.connect() as conn:
            user = conn.execute(
                text("SELECT submitted_by FROM preregistrations WHERE id = :i"), {"i": rows[0]}
            ).scalar_one()
        value = json.dumps({"o": 0, "f": "current", "c": False, "id": rows[0]})
        response = self.app.block_action(user, views.LIST_DELETE_ACTION, value)
        return response.status_code, "ok" if response.status_code == 200 else "unexpected"

    def accept(self) -> tuple[int, str] | None:
        ids = self.ids(
            "SELECT id FROM preregistrations WHERE status = 'preregistered' "
            "ORDER BY random() LIMIT 1"
        )
        if not ids:
            return None
        view = self.service.view(ids[0])
        if view is None:
            return None
        link = self.invitations.link_for(view)
        http = requests.Session()
        page = http.get(link, timeout=10)
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        if page.status_code >= 500:
            return page.status_code, "unexpected"
        if match is None:  # decided or deleted meanwhile: the page says so
            return page.status_code, "gone"
        posted = http.post(link, data={"email": view.email, "csrf": match.group(1)}, timeout=10)
        if posted.status_code >= 500:
            return posted.status_code, "unexpected"
        return posted.status_code, "associated" if posted.status_code == 200 else "gone"


def run_load(app: RunningApp, seconds: float, clients: int) -> Figures:
    """Runs `clients` concurrent clients for `seconds`; samples the app's connections."""
    figures = Figures(clients=clients, pool_bound=pool_bound(app.db_url))
    lock = threading.Lock()
    customers = max(CUSTOMERS, int(seconds * CUSTOMERS_PER_SECOND))
    workers = [Client(app, n, figures, lock, customers) for n in range(clients)]
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=w.run, args=(until,), daemon=True) for w in workers]
    start = time.monotonic()
    for t in threads:
        t.start()
    sampler = checker_engine(app.db_url)
    try:
        while any(t.is_alive() for t in threads):
            figures.peak_connections = max(
                figures.peak_connections, len(app_connections(sampler, app.db_url))
            )
            time.sleep(0.25)
    finally:
        for t in threads:
            t.join(30)
        figures.seconds = time.monotonic() - start
        for w in workers:
            w.close()
        sampler.dispose()
    return figures


def check_consistency(db_url: str, bound: int, settle_seconds: float = 5.0) -> list[str]:
    """Every way the database could be inconsistent after the run; empty when it is not."""
    problems: list[str] = []
    engine = checker_engine(db_url)
    try:
        with engine.connect() as conn:
            for email, n in conn.execute(
                text(
                    "SELECT email_norm, count(*) FROM preregistrations WHERE status IN "
                    "('under_review', 'preregistered', 'associated') "
                    "GROUP BY email_norm HAVING count(*) > 1"
                )
            ):
                problems.append(f"customer {email} claimed {n} times")
            quota = ", ".join(f"'{s}'" for s in QUOTA_STATUSES)
            for partner, n in conn.execute(
                text(
                    f"SELECT partner_id, count(*) FROM preregistrations WHERE status IN ({quota}) "
                    "GROUP BY partner_id HAVING count(*) > 100"
                )
            ):
                problems.append(f"partner {partner} has {n} live preregistrations (cap 100)")
            statuses = dict(conn.execute(text("SELECT id, status FROM preregistrations")).all())
            events = conn.execute(
                text(
                    "SELECT preregistration_id, action, result FROM audit_events "
                    "WHERE preregistration_id IS NOT NULL ORDER BY id"
                )
            ).all()
        problems += replay_problems(statuses, events)
        deadline = time.monotonic() + settle_seconds
        while True:  # connections settle once the last requests are done
            connections = app_connections(engine, db_url)
            stuck = [c for c in connections if c[0].startswith("idle in transaction")]
            if (not stuck and len(connections) <= bound) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if stuck:
            problems.append(f"{len(stuck)} connection(s) idle in transaction")
        if len(connections) > bound:
            problems.append(f"{len(connections)} connections open, pool bound {bound}")
    finally:
        engine.dispose()
    return problems


def replay_problems(statuses: dict[int, str], events: list[tuple[int, str, str]]) -> list[str]:
    """Replays each preregistration's audit trail; it must lead to the stored status."""
    trail: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for pid, action, result in events:
        trail[pid].append((action, result))
    problems = []
    for pid, status in statuses.items():
        state: str | None = None
        for action, result in trail.get(pid, []):
            if result.startswith("refused:") or action in NO_STATE_CHANGE:
                continue
            if action == "preregister":
                if state is not None or result not in ("under_review", "preregistered"):
                    problems.append(f"preregistration {pid}: preregister {result} after {state}")
                state = result
                continue
            allowed, after = TRANSITIONS.get(action, (set(), ""))
            if state not in allowed or result != after:
                problems.append(f"preregistration {pid}: {action} -> {result} from {state}")
            state = result
        if state != status:
            problems.append(f"preregistration {pid}: audit replays to {state}, row is {status}")
    return problems


def main(argv: list[str] | None = None) -> int:
    from bench.common import scratch_postgres
    from tests.fakeslack import FakeSlack
    from tests.mailbox import SmtpServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)

    fake, smtp = FakeSlack().start(), SmtpServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="prereg-load-"))
    try:
        with scratch_postgres() as url:
            upgrade(url)
            set_up(url)
            app = RunningApp(url, fake, smtp, workdir).start()
            try:
                figures = run_load(app, args.seconds, args.clients)
                problems = check_consistency(url, figures.pool_bound)
                with checker_engine(url).connect() as conn:
                    counts = dict(
                        conn.execute(
                            text("SELECT status, count(*) FROM preregistrations GROUP BY status")
                        ).all()
                    )
                    audit = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
            finally:
                app.stop()
    finally:
        fake.stop()
        smtp.stop()
    print("\n".join(figures.lines()))
    print(f"  rows by status: {dict(sorted(counts.items()))}; audit events: {audit}")
    print(f"  emails sent: {len(smtp.mailbox.messages)}; Slack Web API calls: {len(fake.calls)}")
    print("  consistency: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    for problem in problems[:20]:
        print("    " + problem)
    for error in figures.errors[:20]:
        print("    error: " + error)
    command = f"--seconds {args.seconds:g} --clients {args.clients}"
    print(f"command: .venv/bin/python -m bench.load {command}")
    return 1 if problems or figures.errors else 0


if __name__ == "__main__":
    sys.exit(main())
