"""Benchmark: preregistrations per second end to end, beside a minimal Bolt app doing the same.

One unit = what a person does to preregister a customer: a signed `/preregister` slash command
over HTTP, the form opening (the client waits until `views.open` with the command's trigger_id
reaches the Slack stand-in), then a signed view_submission of the filled form, answered once the
row is stored. `serve` checks every rule and writes the row, its audit event and its outbox
rows in one transaction; the baseline (bench/baseline_app.py with BASELINE_DATABASE_URL: Bolt,
Waitress, acks the command with views.open and stores the submission with one INSERT) does the
least a Bolt app can. Same server, same database, same client threads, same run, the apps
taking turns over the rounds. The goal is serve >= 0.5x the baseline's rate.

The rate is units per second while the clients run. serve's background worker then still has
the notices of those rows to send (the partner's invitation link and QR code, posted at Slack's
pace of about one message a second per channel, bot/pacing.py, so the outbox cannot drain at
the rate rows come in). After serve's turn the script waits until the worker has done the work
it can do now (it spends under 5% of a core, waiting for the pace) before the baseline's turn;
the worker's CPU until then counts as serve's. CPU per unit: serve's web process, serve's web
and worker together, the baseline's process.

    .venv/bin/python -m bench.throughput [--backend sqlite|postgres|both] [--clients 8]
        [--count 600] [--rounds 3] [--before DIR]

`--before DIR` runs a second `serve` from another source tree (`git archive COMMIT | tar -x -C
DIR`) in the same turns, on partners of its own, and adds its rate and this/before.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.common import (
    Process,
    scratch_postgres,
    scratch_sqlite,
    start_prereg,
    wait_http,
)
from bench.visible import VisibleSlack
from bot.admin import Admin
from bot.clock import SystemClock
from bot.errors import BUSY_MESSAGE
from store.db import Database
from store.migrate import upgrade
from tests.mailbox import free_port
from tests.slackapp import SIGNING_SECRET, sign

PER_PARTNER = 90  # below R4's cap of 100
BUSY_RETRIES = 3
"""A submission answered "busy" (a lock wait ran past its bound, store/db.py) is submitted
again, up to this many times, and counted: on a crowded machine a waiter can time out."""


def command_body(user: str, trigger: str, response_url: str) -> str:
    return urllib.parse.urlencode(
        {
            "team_id": "T1",
            "channel_id": "CTHRU",
            "user_id": user,
            "command": "/preregister",
            "text": "",
            "api_app_id": "A1",
            "response_url": response_url,
            "trigger_id": trigger,
        }
    )


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
    return [f"UTHRU{i:04d}" for i in range(count // PER_PARTNER + 1)]


@dataclass
class App:
    label: str
    proc: Process
    url: str
    prefix: str  # of the customers' emails it stores
    base: int = 0  # its units use the members (partners) from this unit number on
    done: int = 0
    seconds: float = 0.0
    web_cpu: float = 0.0
    tree_cpu: float = 0.0
    busy: int = 0  # submissions answered "busy" and submitted again


def run_units(fake: VisibleSlack, app: App, first: int, count: int, clients: int) -> float:
    """`count` units from `clients` threads, each on one kept-alive connection; seconds taken."""
    address = urllib.parse.urlsplit(app.url)
    local = threading.local()
    conns: list[http.client.HTTPConnection] = []
    lock = threading.Lock()
    members = members_for(app.base + first + count)

    def post(conn: http.client.HTTPConnection, body: str) -> bytes:
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
        conn.request("POST", "/slack/events", body=body.encode(), headers=headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"{app.label}: {response.status}: {answer[:300]!r}")
        return answer

    def one(i: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(
                address.hostname, address.port, timeout=30
            )
            with lock:
                conns.append(conn)
        tag = uuid.uuid4().hex
        trigger = f"trigger.{tag}"
        opened, _ = fake.expect(trigger)
        user = members[(app.base + i) // PER_PARTNER]
        post(conn, command_body(user, trigger, fake.url.replace("/api/", "/response/") + tag))
        if not opened.wait(10):
            raise RuntimeError(f"{app.label}: the form did not open")
        body = submission_body(user, f"{app.prefix}{i}@customer.example")
        answer = post(conn, body)
        for _ in range(BUSY_RETRIES):
            if BUSY_MESSAGE.encode() not in answer:
                break
            # "busy, submit again", as a person would: the same view id, so one row at most
            with lock:
                app.busy += 1
            answer = post(conn, body)
        if b'"errors"' in answer:
            raise RuntimeError(f"{app.label}: {answer[:300]!r}")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        try:
            list(pool.map(one, range(first, first + count)))
        finally:
            for conn in conns:
                conn.close()
    return time.perf_counter() - start


def worker_settled(proc: Process, timeout: float = 300) -> None:
    """Waits until serve's worker spends under 5% of a core (over one second)."""
    deadline = time.monotonic() + timeout
    last = proc.tree_cpu_seconds() - proc.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(1)
        now = proc.tree_cpu_seconds() - proc.cpu_seconds()
        if now - last < 0.05:
            return
        last = now
    raise RuntimeError("serve's worker stayed busy")


def stored(url: str, prefix: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM preregistrations WHERE email_norm LIKE :p"),
            {"p": f"{prefix}%"},
        ).scalar_one()
    engine.dispose()
    return int(n)


def start_throughput_baseline(
    url: str, slack_url: str, workdir: Path, partner: int
) -> tuple[Process, str]:
    port = free_port()
    env = {
        **os.environ,
        "SLACK_API_URL": slack_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PORT": str(port),
        "BASELINE_DATABASE_URL": url,
        "BASELINE_PARTNER_ID": str(partner),
    }
    proc = Process([sys.executable, "-m", "bench.baseline_app"], env, workdir / "baseline.log")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", proc)
    return proc, base


def run(backend: str, args: argparse.Namespace, workdir: Path) -> list[App]:
    scratch: AbstractContextManager[str] = (
        scratch_postgres() if backend == "postgres" else scratch_sqlite(workdir)
    )
    fake = VisibleSlack().start()
    with scratch as url:
        upgrade(url)
        db = Database(url)
        admin = Admin(db, SystemClock())
        servers = 2 if args.before else 1
        stride = (args.count // PER_PARTNER + 1) * PER_PARTNER  # units per server, whole partners
        for i, member in enumerate(members_for(stride * servers)):
            admin.add_partner(f"Throughput {i}", "DE", [member], contact_email="t@bench.example")
        partner_id = admin.add_partner(
            "Baseline", "DE", ["UBASELINE"], contact_email="b@bench.example"
        )
        db.dispose()
        env = {"PREREG_SCHEDULER": "false", "PREREG_DB_POOL_SIZE": "16"}
        serve_proc, serve_url = start_prereg(url, fake.url, workdir, env)
        base_proc, base_url = start_throughput_baseline(url, fake.url, workdir, partner_id)
        apps = [
            App("serve", serve_proc, serve_url, "e2e"),
            App("bare Bolt", base_proc, base_url, "base"),
        ]
        if args.before:
            before_proc, before_url = start_prereg(
                url, fake.url, workdir, env, name="serve-before", source=args.before.resolve()
            )
            apps.append(App("serve before", before_proc, before_url, "bef", base=stride))
        try:
            per_round = args.count // args.rounds
            for _ in range(args.rounds):
                for app in apps:
                    web, tree = app.proc.cpu_seconds(), app.proc.tree_cpu_seconds()
                    app.seconds += run_units(fake, app, app.done, per_round, args.clients)
                    if app.label.startswith("serve"):
                        worker_settled(app.proc)
                    app.web_cpu += app.proc.cpu_seconds() - web
                    app.tree_cpu += app.proc.tree_cpu_seconds() - tree
                    app.done += per_round
            for app in apps:
                found = stored(url, app.prefix)
                if found != app.done:
                    raise RuntimeError(f"{app.label}: {found} rows stored, expected {app.done}")
        finally:
            for app in apps:
                app.proc.stop()
            fake.stop()
    return apps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--count", type=int, default=600, help="units per app")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--before", type=Path, help="source tree of the code to compare with, run side by side"
    )
    args = parser.parse_args()
    print("command: .venv/bin/python -m bench.throughput", *sys.argv[1:])
    workdir = Path(tempfile.mkdtemp(prefix="prereg-bench-"))
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    extra = (
        " | before units/s | this / before | CPU before: web / web+worker" if args.before else ""
    )
    print(
        "| backend | serve units/s | bare Bolt units/s | ratio "
        f"| CPU per unit: serve web / web+worker / bare{extra} |"
    )
    print("|---" * (8 if args.before else 5) + "|")
    for backend in backends:
        apps = run(backend, args, workdir)
        ours, base = apps[0], apps[1]
        rate, base_rate = ours.done / ours.seconds, base.done / base.seconds
        row = (
            f"| {backend} | {rate:.1f} | {base_rate:.1f} | {rate / base_rate:.2f}x "
            f"| {ours.web_cpu / ours.done * 1000:.2f} / {ours.tree_cpu / ours.done * 1000:.2f} "
            f"/ {base.web_cpu / base.done * 1000:.2f} ms"
        )
        if args.before:
            old = apps[2]
            old_rate = old.done / old.seconds
            row += (
                f" | {old_rate:.1f} | {rate / old_rate:.2f}x "
                f"| {old.web_cpu / old.done * 1000:.2f} / {old.tree_cpu / old.done * 1000:.2f} ms"
            )
        print(row + " |", flush=True)
        retried = ", ".join(f"{app.label} {app.busy}" for app in apps if app.busy)
        if retried:
            print(f"({backend}: submissions answered busy and sent again: {retried})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
