"""Benchmark: how far `serve`'s list answer is from the least any app must do to give it.

bench/visible.py compares `serve` with a bare Bolt app answering a constant message. This puts a
third app between them: the same bare app answering `/preregister list` and `list expired` in
its ack with `serve`'s own answer, made the least costly way (bench/baseline_app.py
BASELINE_READ_URL: `serve`'s one statement for the page and its Block Kit builder, nothing
else). So the visible answer's ratio to the constant message splits into what the answer itself
costs (floor / constant) and what `serve` adds around it (serve / floor). The three apps take
turns over the rounds with the same requests from the same client threads, on the database
bench/visible.py seeds; the answers of the floor app and of `serve` are compared once first.

    .venv/bin/python -m bench.floor [--backend sqlite|postgres] [--rows 3000] [--levels 1,10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import urllib.parse
from pathlib import Path

from bench.common import percentile, scratch_postgres, scratch_sqlite, start_baseline, start_prereg
from bench.visible import VisibleSlack, command, measure, seed
from tests.slackapp import sign

SURFACES = ("list", "list expired")


def ack_body(base_url: str, text: str) -> dict:
    """The body of the app's ack to `/preregister <text>` (which carries the answer)."""
    address = urllib.parse.urlsplit(base_url)
    body, ctype = command(text, "http://127.0.0.1:9/response/unused", "trigger.unused")
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        conn.request(
            "POST",
            "/slack/events",
            body=body.encode(),
            headers={"Content-Type": ctype, **sign(body)},
        )
        return json.loads(conn.getresponse().read() or b"{}")
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=300, help="per app, surface and level")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", default="1,10")
    args = parser.parse_args()
    print("command: .venv/bin/python -m bench.floor", *sys.argv[1:])
    workdir = Path(tempfile.mkdtemp(prefix="prereg-floor-"))
    fake = VisibleSlack().start()
    scratch = scratch_postgres() if args.backend == "postgres" else scratch_sqlite(workdir)
    with scratch as url:
        seed(url, args.rows, 0)
        env = {"PREREG_SCHEDULER": "false"}
        apps = [
            ("constant", start_baseline(fake.url, workdir, answer_in_ack=True)),
            ("floor", start_baseline(fake.url, workdir, answer_in_ack=True, read_url=url)),
            ("serve", start_prereg(url, fake.url, workdir, env)),
        ]
        try:
            for text in SURFACES:
                floor, ours = (ack_body(base, text) for _, (_, base) in apps[1:])
                same = floor.get("blocks") == ours.get("blocks")
                print(f"`/preregister {text}`: the floor app's Block Kit equals serve's: {same}")
            print(
                "| surface | users | constant p50 / p99 | floor p50 / p99 | serve p50 / p99 "
                "| floor / constant p50 / p99 | serve / floor p50 / p99 "
                "| serve / constant p50 / p99 | CPU per request: constant / floor / serve |"
            )
            print("|---" * 9 + "|")
            for level in map(int, args.levels.split(",")):
                for text in SURFACES:
                    report_row(fake, apps, text, level, args)
        finally:
            for _, (proc, _) in apps:
                proc.stop()
            fake.stop()
    return 0


def report_row(
    fake: VisibleSlack, apps: list, text: str, level: int, args: argparse.Namespace
) -> None:
    def builder(url: str, trig: str) -> tuple[str, str, str]:
        return (*command(text, url, trig), urllib.parse.urlsplit(url).path)

    lat: list[list[float]] = [[] for _ in apps]
    cpu = [0.0 for _ in apps]
    for _ in range(args.rounds):
        for i, (_, (proc, base)) in enumerate(apps):
            start = proc.cpu_seconds()
            lat[i] += measure(fake, base, builder, args.requests // args.rounds, level)
            cpu[i] += proc.cpu_seconds() - start
    p50 = [percentile(x, 50) * 1000 for x in lat]
    p99 = [percentile(x, 99) * 1000 for x in lat]
    per = [c / len(x) * 1000 for c, x in zip(cpu, lat, strict=True)]

    def ratio(a: int, b: int) -> str:
        return f"{p50[a] / p50[b]:.2f}x / {p99[a] / p99[b]:.2f}x"

    print(
        f"| /preregister {text} | {level} "
        + "".join(f"| {p50[i]:.1f} / {p99[i]:.1f} ms " for i in range(3))
        + f"| {ratio(1, 0)} | {ratio(2, 1)} | {ratio(2, 0)} "
        + f"| {per[0]:.2f} / {per[1]:.2f} / {per[2]:.2f} ms |",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
