"""Benchmark: the memory of all of `serve`'s processes under the ack benchmark's load.

`serve` (PostgreSQL holding 100,000 preregistrations) and the minimal Bolt app of
bench/baseline_app.py get the ack benchmark's requests (`/preregister` and Approve, at 10 and
50 clients, taking turns over the rounds) while a thread reads, every 0.2 s, the proportional
set size (PSS) and the resident set size (RSS) of every process of each app from
/proc/PID/smaps_rollup. Reported: the peak of the summed PSS (each shared page counted once
over the tree) and of the summed RSS (shared pages counted in every process), and each
process's share at the PSS peak. `--before DIR` runs a second `serve` from another source
tree (`git archive REV | tar -x -C DIR`) side by side, under the same load. Also reported:
each app's first `/preregister` ack, timed as soon as the app answers /healthz (what it has
left to import then is paid by that request; Slack gives up after 3 s), and each app's ack
round trips (p50/p99) in each cell of the load, so that a change that makes `serve` smaller
shows what it costs the acks in the same run.

    .venv/bin/python -m bench.footprint [--rows 100000] [--requests 600] [--before DIR]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.ack_latency import MEMBER, approve_body, command_body, prepare_database
from bench.common import (
    Process,
    alternate,
    percentile,
    scratch_postgres,
    sign,
    start_baseline,
    start_prereg,
    start_slack_standin,
)

LEVELS = (10, 50)


def first_ack(base_url: str) -> float:
    """Seconds to the ack of one `/preregister`, on a new connection."""
    address = urllib.parse.urlsplit(base_url)
    body = command_body(MEMBER)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        start = time.perf_counter()
        conn.request(
            "POST",
            "/slack/events",
            body=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)},
        )
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"first /preregister: {response.status}")
    return elapsed


def settle(url: str, timeout: float = 120.0) -> int:
    """Waits until the outbox has nothing pending (the start-up sweep's digests, the clicks'
    notices); returns how many notices were sent so far."""
    engine = create_engine(url)
    deadline, quiet = time.monotonic() + timeout, 0
    try:
        while time.monotonic() < deadline and quiet < 3:
            with engine.connect() as conn:
                pending = conn.execute(
                    text("SELECT count(*) FROM deliveries WHERE status = 'pending'")
                ).scalar_one()
            quiet = quiet + 1 if not pending else 0
            time.sleep(0.5)
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM deliveries WHERE status = 'sent'")
            ).scalar_one()
    finally:
        engine.dispose()


class Peak:
    """The largest summed PSS (and the RSS and per-process split at that moment) of one app."""

    def __init__(self, proc: Process) -> None:
        self.proc = proc
        self.pss = self.rss = self.rss_peak = 0
        self.split: dict[int, tuple[int, int]] = {}

    def sample(self) -> None:
        found = self.proc.memory_kib()
        pss, rss = sum(p for p, _ in found.values()), sum(r for _, r in found.values())
        self.rss_peak = max(self.rss_peak, rss)
        if pss > self.pss:
            self.pss, self.rss, self.split = pss, rss, found


def name_of(pid: int) -> str:
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() == "prereg-worker":
            return "worker"
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = b" ".join(args).decode()
    for key, label in (
        ("resource_tracker", "resource tracker"),
        ("spawn_main", "worker (spawned)"),
        ("bot.entry.worker", "worker"),
        ("cli serve", "web"),
        ("baseline_app", "baseline"),
    ):
        if key in text:
            return label
    return "worker (forked)" if "cli" in text else text[:40]


def print_acks(labels: list[str], acks: list[tuple[str, int, list[list[float]]]]) -> None:
    """The ack round trips under the same load, p50/p99 ms per app: what a smaller `serve`
    may cost the acks shows in the same run."""
    print()
    print("| request | clients | " + " | ".join(f"{label} p50/p99" for label in labels) + " |")
    print("|---|---|" + "---|" * len(labels))
    for request, level, per_app in acks:
        cells = " | ".join(
            f"{percentile(lat, 50) * 1000:.1f} / {percentile(lat, 99) * 1000:.1f} ms"
            for lat in per_app
        )
        print(f"| {request} | {level} | {cells} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=600, help="per app, request and level")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--before", type=Path, help="source tree of the code to compare with")
    args = parser.parse_args()
    print("command: .venv/bin/python -m bench.footprint", *sys.argv[1:])
    workdir = Path(tempfile.mkdtemp(prefix="prereg-bench-"))
    apps = 2 if args.before else 1
    total_reviews = (args.requests + sum(LEVELS) * args.rounds) * len(LEVELS) * apps + 100
    with scratch_postgres() as url:
        review_ids = iter(prepare_database(url, args.rows, total_reviews))
        standin, slack_url = start_slack_standin(workdir)
        contenders: list[tuple[str, Process, str]] = []
        # A smaller pool than the default 40: two serves and the machine's other users share
        # one PostgreSQL (max_connections 100); 12 is more than 50 clients keep busy here.
        pool = {"PREREG_DB_POOL_SIZE": "12"}
        firsts: list[float] = []
        ours, ours_url = start_prereg(url, slack_url, workdir, pool)
        firsts.append(first_ack(ours_url))
        contenders.append(("serve (this checkout)", ours, ours_url))
        if args.before:
            old, old_url = start_prereg(
                url,
                slack_url,
                workdir,
                pool,
                name="serve-before",
                source=args.before.resolve(),
            )
            firsts.append(first_ack(old_url))
            contenders.append((f"serve ({args.before})", old, old_url))
        base, base_url = start_baseline(slack_url, workdir)
        firsts.append(first_ack(base_url))
        contenders.append(("baseline Bolt app", base, base_url))
        peaks = [Peak(proc) for _, proc, _ in contenders]
        done = threading.Event()

        def sampler() -> None:
            while not done.wait(0.2):
                for peak in peaks:
                    peak.sample()

        thread = threading.Thread(target=sampler, daemon=True)
        acks: list[tuple[str, int, list[list[float]]]] = []  # (request, clients, per app)
        try:
            print(f"start-up sweep settled: {settle(url)} notices sent before measuring")
            thread.start()
            fake_ids = itertools.count(1)
            for level in LEVELS:
                for request, ours_body, base_body in (
                    ("/preregister", lambda: command_body(MEMBER), lambda: command_body(MEMBER)),
                    (
                        "Approve",
                        lambda: approve_body(next(review_ids)),
                        lambda: approve_body(next(fake_ids)),
                    ),
                ):
                    bodies = [ours_body] * (apps) + [base_body]
                    measured = alternate(
                        [(p, u, b) for (_, p, u), b in zip(contenders, bodies, strict=True)],
                        args.requests,
                        args.rounds,
                        level,
                    )
                    acks.append((request, level, [latencies for latencies, _ in measured]))
                    settle(url)  # the worker delivers what the clicks queued, and is measured
            done.set()
            thread.join()
            print(
                "| app | peak PSS (summed) | RSS at that moment | peak RSS (summed) | split "
                "| first /preregister ack |"
            )
            print("|---|---|---|---|---|---|")
            for (label, _, _), peak, first in zip(contenders, peaks, firsts, strict=True):
                split = ", ".join(
                    f"{name_of(pid)} {pss / 1024:.0f}/{rss / 1024:.0f}"
                    for pid, (pss, rss) in peak.split.items()
                )
                print(
                    f"| {label} | {peak.pss / 1024:.0f} MiB | {peak.rss / 1024:.0f} MiB "
                    f"| {peak.rss_peak / 1024:.0f} MiB | {split} (PSS/RSS MiB) "
                    f"| {first * 1000:.0f} ms |"
                )
            print_acks([label for label, _, _ in contenders], acks)
        finally:
            done.set()
            for _, proc, _ in contenders:
                proc.stop()
            standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
