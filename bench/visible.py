"""Benchmark: how long a person waits for what they asked Slack for (the visible answer).

From the moment a signed request is sent to the moment the answer a person sees arrives: the
ack itself when its body carries the message (Slack shows it as the reply: `serve`'s
`/preregister <word>` answers ready in time), else at the Slack stand-in the first post to the
request's own response_url (a list page click, Show contact details, a command answered late),
the `views.open` with the request's trigger_id (the form, the Reject button's reason form) or the
`views.publish` for the user (App Home opened). `time.monotonic` on both sides, same machine:
the stand-in runs in this process.
`serve` (default SQLite, 3,000 stored rows) and bench/baseline_app.py (a bare Bolt app that
acks and answers with a constant message) get the same requests from the same client threads,
taking turns over the rounds, at 1, 10 and 50 clients. The bare app runs twice for the
`/preregister <word>` surfaces: answering on response_url ("bare, response_url") and in the
ack ("bare, in ack"), so `serve` is shown against both ways of answering; the other surfaces
answer only one way. CPU per request is the
web process's (the worker is niced and delivers nothing visible here).

The Approve button's visible answer is the worker's `chat.update` of the review message (the
click is queued, the worker decides it and updates the post): keyed by the message's ts. Each
Approve request clicks a request of its own, seeded under review with a review post; the bare
app answers the same click with chat.update of the clicked message. For that row the CPU column
also gives `serve`'s web and worker processes together.

    .venv/bin/python -m bench.visible [--rows 3000] [--requests 300] [--rounds 6] [--before DIR]
    .venv/bin/python -m bench.visible --backend postgres --rows 100000

`--before DIR` runs a second `serve` from another source tree (`git archive COMMIT | tar -x -C
DIR`) beside this checkout's, and adds its figures and this/before ratios to each row.
"""

from __future__ import annotations

import argparse
import http.client
import io
import itertools
import json
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

from bench.common import (
    Process,
    percentile,
    scratch_postgres,
    scratch_sqlite,
    start_baseline,
    start_prereg,
)
from bot.admin import Admin
from bot.clock import SystemClock
from store.db import Database
from store.migrate import upgrade
from store.models import Partner, Preregistration
from tests.fakeslack import FakeSlack
from tests.slackapp import sign

MEMBER = "UBENCH1"
MANAGER = "UBENCHMGR"
LEVELS = (1, 10, 50)
HOME_MEMBER = "UBENCHHOME"
"""A member's App Home: one such member per client (`{prefix}{n}`), seeded, so each client's
`views.publish` is told apart by its user. A manager's App Home is opened by MANAGER from every
client (each manager is a contact on the other surfaces: more would change them), its
publishes answered in order (VisibleSlack)."""


class VisibleSlack(FakeSlack):
    """The fake Slack, noting when each visible answer arrives: by response_url path, by
    views.open trigger_id, by views.publish user, by chat.update ts. Requests waiting on one
    key (one manager's App Home opened by several clients at once: a publish names only the
    user) are answered in the order they were sent."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[str, list[tuple[threading.Event, list[float]]]] = {}
        self.guard = threading.Lock()

    def expect(self, key: str) -> tuple[threading.Event, list[float]]:
        slot: tuple[threading.Event, list[float]] = (threading.Event(), [])
        with self.guard:
            self.waiting.setdefault(key, []).append(slot)
        return slot

    def forget(self, key: str, slot: tuple[threading.Event, list[float]]) -> None:
        """An answer that came in the ack: nothing to wait for at the stand-in."""
        with self.guard:
            waiting = self.waiting.get(key, [])
            if slot in waiting:
                waiting.remove(slot)
            if not waiting:
                self.waiting.pop(key, None)

    def _handle(self, req: Any) -> None:
        at = time.monotonic()
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        connection, req.rfile = req.rfile, io.BytesIO(raw)
        path = urllib.parse.urlparse(req.path).path
        key = path if path.startswith("/response/") else None
        if key is None and path.endswith(("/views.open", "/views.publish", "/chat.update")):
            args = dict(urllib.parse.parse_qsl(raw.decode()))
            if "json" in req.headers.get("Content-Type", ""):
                args = json.loads(raw or b"{}")
            key = args.get("trigger_id") or args.get("user_id") or args.get("ts")
        if key:
            with self.guard:
                waiting = self.waiting.get(key)
                slot = waiting.pop(0) if waiting else None
                if waiting == []:
                    del self.waiting[key]
            if slot is not None:
                slot[1].append(at)
                slot[0].set()
        super()._handle(req)
        # The connection's own stream again, for its next request: left on the copy, the
        # handler saw an end of stream and closed every connection after one call, which
        # Slack does not do (serve keeps its connections to Slack alive, bot/slack/client.py).
        req.rfile = connection
        with self._lock:  # nothing here reads them; keep the process small
            self.calls.clear()
            self.responses.clear()


REVIEW_CHANNEL = "CREVIEW"
APPROVE_PACE = 1.4
"""Seconds between Approve clicks: the worker paces chat.update to Slack's tier 3 (50 a
minute per workspace, bursts of 5; bot/pacing.py), so faster clicks would measure the pacer.
One user only: more users at that rate are the same load."""


def review_ts(n: int) -> str:
    """The ts of the n-th seeded review post (one per Approve request)."""
    return f"1700000000.{n:06d}"


def seed(url: str, rows: int, approvals: int, homes: int = 1) -> tuple[int, int, str]:
    """`rows` preregistrations (history and live, 50 a partner), the bench partner with 90 live
    rows and its member (and `homes` more, for App Home), a manager, one request under review
    and `approvals` more under review, each with a review post (REVIEW_CHANNEL, review_ts(n))
    for the Approve surface. Works on SQLite and PostgreSQL (rows in batches of 10,000).
    Returns (review id, live row id of the bench partner, one of its emails)."""
    upgrade(url)
    db = Database(url)
    admin = Admin(db, SystemClock())
    members = [MEMBER, *(f"{HOME_MEMBER}{n}" for n in range(homes))]
    admin.add_partner("Bench partner", "DE", members, contact_email="desk@bench.example")
    admin.add_manager(MANAGER)
    db.dispose()
    now = datetime.now(UTC)
    engine = create_engine(url)
    partners = max(1, rows // 50)
    statuses = ("preregistered", "expired", "associated", "deleted")

    def row(g: int) -> dict[str, Any]:
        status = "preregistered" if g < 90 else statuses[g % 4]
        return {
            "partner_id": 1 if g < 200 else 2 + g % partners,
            "full_name": f"Seed customer {g}",
            "email": f"seed{g}@customer.example",
            "email_norm": f"seed{g}@customer.example",
            "mobile": "+4915100000000",
            "send_invitation": False,
            "association_type": "reseller",
            "status": status,
            "customer_country": "DE",
            "submitted_by": "USEED",
            "submitted_at": now - timedelta(days=3),
            "expires_at": now + timedelta(days=12 if status == "preregistered" else -3),
            "review_due_at": None,
            "review_channel_id": None,
            "review_message_ts": None,
            "invite_failed_attempts": 0,
        }

    def under_review(email: str, ts: str | None) -> dict[str, Any]:
        return {
            **row(0),
            "email": email,
            "email_norm": email,
            "status": "under_review",
            "expires_at": None,
            "review_due_at": now + timedelta(days=2),
            "partner_id": 2,
            "review_channel_id": REVIEW_CHANNEL if ts else None,
            "review_message_ts": ts,
        }

    with engine.begin() as conn:
        conn.execute(
            insert(Partner),
            [
                {
                    "name": f"Seed partner {i}",
                    "country": "DE",
                    "contact_email": f"d{i}@s.example",
                    "lock_version": 0,
                    "created_at": now,
                }
                for i in range(partners)
            ],
        )
        for start in range(0, rows, 10_000):
            conn.execute(
                insert(Preregistration), [row(g) for g in range(start, min(rows, start + 10_000))]
            )
        conn.execute(insert(Preregistration), [under_review("review@customer.example", None)])
        for start in range(0, approvals, 10_000):
            conn.execute(
                insert(Preregistration),
                [
                    under_review(f"approve{n}@customer.example", review_ts(n))
                    for n in range(start, min(approvals, start + 10_000))
                ],
            )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    review = rows + 1
    return review, 1, "seed1@customer.example"


# --- the requests --------------------------------------------------------------------------


def command(text: str, response_url: str, trigger: str) -> tuple[str, str]:
    body = urllib.parse.urlencode(
        {
            "team_id": "T1",
            "channel_id": "CBENCH",
            "user_id": MEMBER,
            "command": "/preregister",
            "text": text,
            "api_app_id": "A1",
            "response_url": response_url,
            "trigger_id": trigger,
        }
    )
    return body, "application/x-www-form-urlencoded"


def action(
    user: str,
    action_id: str,
    value: str,
    response_url: str,
    trigger: str,
    message_ts: str = "1.1",
    channel: str = "CBENCH",
) -> tuple[str, str]:
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": user},
        "api_app_id": "A1",
        "trigger_id": trigger,
        "response_url": response_url,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "channel": {"id": channel},
        "message": {"ts": message_ts, "text": "", "blocks": []},
        "actions": [
            {
                "action_id": action_id,
                "block_id": "b",
                "type": "button",
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urllib.parse.urlencode(
        {"payload": json.dumps(payload)}
    ), "application/x-www-form-urlencoded"


def home_opened(user: str) -> tuple[str, str]:
    body = json.dumps(
        {
            "token": "legacy",
            "team_id": "T1",
            "api_app_id": "A1",
            "type": "event_callback",
            "authorizations": [
                {"team_id": "T1", "enterprise_id": None, "is_enterprise_install": False}
            ],
            "event_id": f"Ev{uuid.uuid4().hex[:10]}",
            "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": user, "tab": "home"},
        }
    )
    return body, "application/json"


# A surface: (name, request for serve, request for the baseline); each request builder gets the
# response_url and trigger_id to use and returns (body, content type, key of the visible answer).
Builder = Callable[[str, str], tuple[str, str, str]]


def surfaces(
    review: int, email: str, approvals: Callable[[], int], homes: int = max(LEVELS)
) -> list[tuple[str, Builder, Builder]]:
    """(name, serve's request, the bare app's request); names starting with `/preregister `
    followed by a word are the surfaces the bare app can answer in its ack. `approvals()` gives
    the number of the next seeded request under review to approve; `homes` the members seeded
    for App Home (at least the clients of a level)."""

    def cmd(text: str) -> Builder:
        return lambda url, trig: (*command(text, url, trig), urllib.parse.urlsplit(url).path)

    def click(action_id: str, value: str, by_trigger: bool = False, user: str = MEMBER) -> Builder:
        def build(url: str, trig: str) -> tuple[str, str, str]:
            key = trig if by_trigger else urllib.parse.urlsplit(url).path
            return (*action(user, action_id, value, url, trig), key)

        return build

    def form(url: str, trig: str) -> tuple[str, str, str]:
        return (*command("", url, trig), trig)

    def home(url: str, trig: str) -> tuple[str, str, str]:
        user = f"UHOME{uuid.uuid4().hex[:8].upper()}"  # one key per request
        return (*home_opened(user), user)

    def manager_home(url: str, trig: str) -> tuple[str, str, str]:
        return (*home_opened(MANAGER), MANAGER)

    def own_home(prefix: str) -> Builder:
        """App Home opened by the client's own seeded user of `prefix` (one per client
        thread, so no two requests in flight wait for one user's `views.publish`)."""
        local, numbers = threading.local(), itertools.count()

        def build(url: str, trig: str) -> tuple[str, str, str]:
            if not hasattr(local, "user"):
                local.user = f"{prefix}{next(numbers) % homes}"
            return (*home_opened(local.user), local.user)

        return build

    def approve(url: str, trig: str) -> tuple[str, str, str]:
        n = approvals()
        ts = review_ts(n)
        pid = str(review + 1 + n)
        return (*action(MANAGER, "review_approve", pid, url, trig, ts, REVIEW_CHANNEL), ts)

    def approve_bare(url: str, trig: str) -> tuple[str, str, str]:
        ts = f"{time.time():.6f}{uuid.uuid4().hex[:6]}"  # the clicked message, answered as is
        return (*action(MANAGER, "review_approve", "1", url, trig, ts, REVIEW_CHANNEL), ts)

    page = json.dumps({"o": 10, "f": "live", "c": 0})
    shown = json.dumps({"o": 0, "f": "live", "c": 1})
    respond, modal = click("bench_visible_respond", "x"), click("bench_visible_modal", "x", True)
    return [
        ("/preregister (form opening)", form, form),
        ("/preregister list", cmd("list"), cmd("list")),
        ("/preregister list expired", cmd("list expired"), cmd("list expired")),
        ("/preregister check", cmd(f"check {email}"), cmd(f"check {email}")),
        (
            "/preregister delete (unknown email)",
            cmd("delete nobody@nowhere.example"),
            cmd("delete nobody@nowhere.example"),
        ),
        ("list page click", click("customers_page_next", page), respond),
        ("Show contact details", click("customers_toggle_contacts", shown), respond),
        ("App Home opened (a stranger)", home, home),
        ("App Home opened (a partner's member)", own_home(HOME_MEMBER), own_home(HOME_MEMBER)),
        ("App Home opened (a manager)", manager_home, manager_home),
        ("Reject button (reason form)", click("review_reject", str(review), True, MANAGER), modal),
        ("Approve button (worker's chat.update)", approve, approve_bare),
    ]


def carries_message(ack_body: bytes) -> bool:
    """Whether an ack's body is a message Slack shows as the reply."""
    if not ack_body.lstrip().startswith(b"{"):
        return False
    message = json.loads(ack_body)
    return bool(message.get("text") or message.get("blocks"))


def measure(
    fake: VisibleSlack,
    base_url: str,
    builder: Builder,
    total: int,
    clients: int,
    pace: float = 0.0,
) -> list[float]:
    """Closed loop: each client sends its next request once the last one's answer is seen,
    and no sooner than `pace` seconds after it started (Approve: Slack's chat.update rate)."""
    address = urllib.parse.urlsplit(base_url)
    local = threading.local()
    conns: list[http.client.HTTPConnection] = []
    lock = threading.Lock()

    def one(_: int) -> float:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(
                address.hostname, address.port, timeout=30
            )
            with lock:
                conns.append(conn)
        tag = uuid.uuid4().hex
        body, ctype, key = builder(fake.url.replace("/api/", "/response/") + tag, f"trigger.{tag}")
        slot = fake.expect(key)
        event, arrivals = slot
        headers = {"Content-Type": ctype, **sign(body)}
        start = time.monotonic()
        conn.request("POST", "/slack/events", body=body.encode(), headers=headers)
        response = conn.getresponse()
        answer = response.read()
        acked = time.monotonic()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {answer[:200]!r}")
        if carries_message(answer):
            fake.forget(key, slot)
            return acked - start
        if not event.wait(10):
            raise RuntimeError(f"no visible answer for {key}")
        time.sleep(max(0.0, start + pace - time.monotonic()))
        return arrivals[0] - start

    with ThreadPoolExecutor(max_workers=clients) as pool:
        try:
            list(pool.map(one, range(clients)))  # warm: every connection open
            return list(pool.map(one, range(total)))
        finally:
            for conn in conns:
                conn.close()


def in_ack_surface(name: str) -> bool:
    return name.startswith("/preregister ") and not name.startswith("/preregister (")


def outbox_settled(url: str, timeout: float = 120) -> None:
    """Waits until the worker has nothing pending (what the Approve clicks queued), so its CPU
    for them is counted and none of it spills into the next cell."""
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                pending = conn.execute(
                    text("SELECT count(*) FROM deliveries WHERE status = 'pending'")
                ).scalar_one()
            if not pending:
                return
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise RuntimeError("the worker did not finish what the clicks queued")


def report(
    fake: VisibleSlack,
    apps: list[tuple[Process, str]],
    url: str,
    review: int,
    email: str,
    args: argparse.Namespace,
    homes: int,
) -> None:
    """One table row per surface and level; apps[0] is the bare Bolt app answering on
    response_url, apps[1] the bare app answering in the ack, apps[2] this checkout's serve,
    apps[3] (with --before) the other source tree's serve. The CPU column is the web
    process's; for Approve, "+ worker" adds serve's worker (its child process)."""
    before = len(apps) > 3
    extra = " | before p50 / p99 | this / before p50 / p99 | CPU before" if before else ""
    print(
        "| surface | users | serve p50 / p99 | bare, response_url p50 / p99 "
        "| bare, in ack p50 / p99 | serve / bare (response_url) p50 / p99 "
        "| serve / bare (in ack) p50 / p99 "
        f"| CPU per request (serve / bare response_url / bare in ack){extra} |"
    )
    print("|---" * (11 if before else 8) + "|")
    counter = itertools.count()
    lock = threading.Lock()

    def next_approval() -> int:
        with lock:
            n = next(counter)
        if n >= args.approvals:
            raise RuntimeError("out of seeded requests to approve: raise --approvals")
        return n

    for level in map(int, args.levels.split(",")):
        for name, ours_req, base_req in surfaces(review, email, next_approval, homes):
            worker = name.startswith("Approve")
            if args.only not in name or (worker and level != 1):
                continue
            both = in_ack_surface(name)
            total = args.approve_requests if worker else args.requests
            runs = [
                (i, app, base_req if i < 2 else ours_req)
                for i, app in enumerate(apps)
                if both or i != 1
            ]
            lat: list[list[float]] = [[] for _ in apps]
            cpu = [0.0 for _ in apps]
            tree = [0.0 for _ in apps]
            for _ in range(args.rounds):
                for i, (proc, url_), req in runs:
                    start, start_tree = proc.cpu_seconds(), proc.tree_cpu_seconds()
                    pace = APPROVE_PACE if worker else 0.0
                    lat[i] += measure(fake, url_, req, total // args.rounds, level, pace)
                    if worker and i > 1:
                        outbox_settled(url)
                    cpu[i] += proc.cpu_seconds() - start
                    tree[i] += proc.tree_cpu_seconds() - start_tree
            if not both:  # the bare app answers these one way only
                lat[1], cpu[1] = lat[0], cpu[0]
            p50 = [percentile(x, 50) * 1000 for x in lat]
            p99 = [percentile(x, 99) * 1000 for x in lat]
            per = [c / len(x) * 1000 for c, x in zip(cpu, lat, strict=True)]
            per_tree = [c / len(x) * 1000 for c, x in zip(tree, lat, strict=True)]
            ours_cpu = f"{per[2]:.2f}" + (f" (+ worker {per_tree[2]:.2f})" if worker else "")
            in_ack = f"{p50[1]:.1f} / {p99[1]:.1f} ms" if both else "(same: answers one way)"
            vs_ack = f"{p50[2] / p50[1]:.2f}x / {p99[2] / p99[1]:.2f}x" if both else "—"
            cpu_ack = f"{per[1]:.2f}" if both else "—"
            row = (
                f"| {name} | {level} | {p50[2]:.1f} / {p99[2]:.1f} ms "
                f"| {p50[0]:.1f} / {p99[0]:.1f} ms | {in_ack} "
                f"| {p50[2] / p50[0]:.2f}x / {p99[2] / p99[0]:.2f}x | {vs_ack} "
                f"| {ours_cpu} / {per[0]:.2f} / {cpu_ack} ms"
            )
            if before:
                row += (
                    f" | {p50[3]:.1f} / {p99[3]:.1f} ms "
                    f"| {p50[2] / p50[3]:.2f}x / {p99[2] / p99[3]:.2f}x | {per[3]:.2f} ms"
                )
            print(row + " |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=300, help="per app, surface and level")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--only", default="", help="surfaces whose name contains this")
    parser.add_argument(
        "--approve-requests", type=int, default=30, help="per app (one user, paced)"
    )
    parser.add_argument(
        "--approvals",
        type=int,
        help="requests under review seeded for the Approve surface (default: enough for a run)",
    )
    parser.add_argument(
        "--pool", type=int, default=12, help="PostgreSQL connections per serve (web process)"
    )
    parser.add_argument(
        "--before", type=Path, help="source tree of the code to compare with, run side by side"
    )
    args = parser.parse_args()
    servers = 2 if args.before else 1
    if args.approvals is None:
        args.approvals = servers * args.rounds * (args.approve_requests // args.rounds + 1)
    print("command: .venv/bin/python -m bench.visible", *sys.argv[1:])
    workdir = Path(tempfile.mkdtemp(prefix="prereg-bench-"))
    fake = VisibleSlack().start()
    scratch = scratch_postgres() if args.backend == "postgres" else scratch_sqlite(workdir)
    with scratch as url:
        started = time.monotonic()
        homes = max([*map(int, args.levels.split(",")), *LEVELS])
        review, _, email = seed(url, args.rows, args.approvals, homes)
        print(f"seeded {args.rows:,} rows on {args.backend} in {time.monotonic() - started:.1f}s")
        env = {"PREREG_SCHEDULER": "false", "PREREG_DB_POOL_SIZE": str(args.pool)}
        ours, ours_url = start_prereg(url, fake.url, workdir, env)
        apps: list[tuple[Process, str]] = [
            start_baseline(fake.url, workdir),
            start_baseline(fake.url, workdir, answer_in_ack=True),
            (ours, ours_url),
        ]
        if args.before:
            source = args.before.resolve()
            apps.append(
                start_prereg(url, fake.url, workdir, env, name="serve-before", source=source)
            )
        try:
            report(fake, apps, url, review, email, args, homes)
        finally:
            for proc, _ in apps:
                proc.stop()
            fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
