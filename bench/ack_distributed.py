"""Benchmark: how fast `prereg-bot serve` acknowledges `/preregister` in distributed mode, with
200 partner workspaces installed, beside the same `serve` in single-workspace mode.

Both run as separate processes on the same database, against one Slack stand-in that knows
every workspace's bot token (any other token is refused). In distributed mode Bolt authorises
each request from slack-sdk's SQLAlchemy installation store, and each request comes from a
seller of another workspace (its own team_id; members are keyed `TEAM:USER`), round robin over
all of them. The vendor's workspace and the first partner workspace are installed by the real
OAuth flow (`/slack/install`, `/slack/oauth_redirect`, `oauth.v2.access`); the other 199 are
written straight into the installation store, the workspaces table and the partners (the same
calls the OAuth success callback and `prereg-bot partner add/link` make). The single-workspace
`serve` gets the same requests from one member of its one workspace. Reported: p50 and p99 of
the HTTP round trip (= Slack's ack wait) at 1, 10 and 50 clients, the apps taking turns over
`--rounds` rounds, the ratio distributed / single, and the web process's CPU per request. At
the end the stand-in's tally must show one `views.open` per request, each with a token it
knows, from every workspace, and no refusal posted to a response_url.

    .venv/bin/python -m bench.ack_distributed [--backend sqlite|postgres] [--workspaces 200]
        [--requests 1500] [--rounds 10]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

from bench.ack_latency import LEVELS, command_body
from bench.common import (
    Process,
    alternate,
    measure,
    percentile,
    scratch_postgres,
    scratch_sqlite,
    standin_tally,
    start_prereg,
    start_slack_standin,
)
from bot.admin import Admin
from bot.clock import SystemClock
from bot.slack.oauth import BOT_SCOPES
from bot.workspaces import Workspaces
from store.db import Database
from store.migrate import upgrade
from tests.fakeslack import FakeSlack
from tests.slackapp import BOT_TOKEN

VENDOR = "TVENDOR"
SELLER = "USELLER1"  # the same user id in every partner workspace: 200 different people
SINGLE_MEMBER = "UBENCH1"
SINGLE_TEAM = "T1"
CLIENT_ID, CLIENT_SECRET = FakeSlack.client_id, FakeSlack.client_secret


def team_ids(count: int) -> list[str]:
    return [f"TP{i:04d}" for i in range(count)]


def seeded_token(team: str) -> str:
    return f"xoxb-{team}-seeded"


@contextmanager
def scratch_database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "postgres":
        with scratch_postgres() as url:
            yield url
    else:
        with scratch_sqlite(workdir) as url:
            yield url


def seed_installations(url: str, teams: list[str]) -> None:
    """`teams` installed without the OAuth dance: the rows Bolt's OAuth flow and our success
    callback would write, through the same calls."""
    db = Database(url)
    clock = SystemClock()
    store = SQLAlchemyInstallationStore(client_id=CLIENT_ID, engine=db.engine)
    workspaces = Workspaces(db, clock)
    try:
        for team in teams:
            store.save(
                Installation(
                    app_id="A1",
                    enterprise_id=None,
                    team_id=team,
                    team_name=f"Workspace {team}",
                    bot_token=seeded_token(team),
                    bot_id="BBOT",
                    bot_user_id="UBOT",
                    bot_scopes=list(BOT_SCOPES),
                    user_id="UADMIN",
                    installed_at=time.time(),
                )
            )
            workspaces.record_install(
                enterprise_id=None,
                team_id=team,
                name=f"Workspace {team}",
                is_enterprise_install=False,
                installed_by=f"{team}:UADMIN",
            )
    finally:
        db.dispose()


def add_partners(url: str, teams: list[str], single_member: bool) -> None:
    """A partner per workspace, linked to it, with that workspace's seller as its member; and
    (`single_member`) the single-workspace app's partner, whose member has a bare key."""
    db = Database(url)
    clock = SystemClock()
    admin, workspaces = Admin(db, clock, home=VENDOR), Workspaces(db, clock)
    try:
        for team in teams:
            name = f"Partner {team}"
            admin.add_partner(name, "DE", [f"{team}:{SELLER}"], contact_email="desk@p.example")
            workspaces.link(team, name)
        if single_member:
            admin.add_partner("Bench partner", "DE", [SINGLE_MEMBER], contact_email="d@b.example")
    finally:
        db.dispose()


def oauth_codes(standin: Process, count: int, timeout: float = 30) -> dict[str, str]:
    """The one-time codes the stand-in printed for the workspaces installed by OAuth."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line.split() for line in standin.log.read_text().splitlines()]
        codes = {words[1]: words[2] for words in lines if words[:1] == ["code"]}
        if len(codes) == count:
            return codes
        time.sleep(0.1)
    raise RuntimeError("the Slack stand-in printed no OAuth codes")


def install_by_oauth(base_url: str, code: str) -> None:
    """What an admin's browser does (tests/test_workspaces.py): "Add to Slack", approve in
    Slack, come back to the redirect with the code."""
    from tests.test_workspaces import finish_install, start_install

    app = SimpleNamespace(base_url=base_url)
    state, cookie = start_install(app)  # type: ignore[arg-type]
    page = finish_install(app, code, state, cookie)  # type: ignore[arg-type]
    if page.status_code != 200 or "is now installed" not in page.text:
        raise RuntimeError(f"OAuth install failed: {page.status_code} {page.text[:300]}")


def bodies(teams: list[str], response_url: str) -> tuple[Callable[[], str], Callable[[], str]]:
    """The single app's member's requests, and each workspace's seller's in turn (`measure`
    calls these under its lock). A refusal would be posted to the stand-in's response_url."""
    cycle = itertools.cycle(teams)
    return (
        lambda: command_body(SINGLE_MEMBER, SINGLE_TEAM, response_url),
        lambda: command_body(SELLER, next(cycle), response_url),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workspaces", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1500, help="per app and level")
    parser.add_argument("--rounds", type=int, default=10, help="alternations of the apps")
    args = parser.parse_args()
    print("command: .venv/bin/python -m bench.ack_distributed", *sys.argv[1:])
    workdir = Path(tempfile.mkdtemp(prefix="prereg-bench-"))
    teams = team_ids(args.workspaces)
    by_oauth, seeded = teams[:1], teams[1:]
    spec = {
        "live": [[SINGLE_TEAM, "Single", BOT_TOKEN]]
        + [[t, f"Workspace {t}", seeded_token(t)] for t in seeded],
        "install": [[VENDOR, "Vendor"]] + [[t, f"Workspace {t}"] for t in by_oauth],
    }
    (workdir / "workspaces.json").write_text(json.dumps(spec))
    with scratch_database(args.backend, workdir) as url:
        upgrade(url)
        started = time.perf_counter()
        seed_installations(url, seeded)
        add_partners(url, seeded, single_member=True)
        standin, slack_url = start_slack_standin(workdir, workdir / "workspaces.json")
        quiet = {"PREREG_SCHEDULER": "false"}  # nothing to sweep; both alike
        single, single_url = start_prereg(url, slack_url, workdir, quiet, name="serve-single")
        distributed, dist_url = start_prereg(
            url,
            slack_url,
            workdir,
            {
                **quiet,
                "SLACK_BOT_TOKEN": "",
                "SLACK_CLIENT_ID": CLIENT_ID,
                "SLACK_CLIENT_SECRET": CLIENT_SECRET,
                "VENDOR_TEAM_ID": VENDOR,
            },
            name="serve-distributed",
        )
        try:
            codes = oauth_codes(standin, 1 + len(by_oauth))
            for team in [VENDOR, *by_oauth]:
                install_by_oauth(dist_url, codes[team])
            add_partners(url, by_oauth, single_member=False)
            print(
                f"{len(teams)} partner workspaces and the vendor's installed "
                f"({1 + len(by_oauth)} by OAuth) in {time.perf_counter() - started:.1f} s"
            )
            response_url = slack_url.replace("/api/", "/response/") + "hook"
            # Each workspace's first request after a start pays for reading its bot and for
            # auth.test (bot/slack/authorize.py): timed here, once per workspace, and reported
            # apart; the table is the steady state, as in bench/ack_latency.py.
            first = measure(dist_url, bodies(teams, response_url)[1], len(teams), 1)
            rows = []
            sent = len(teams) + 1
            for level in LEVELS:
                single_body, dist_body = bodies(teams, response_url)
                contenders = [
                    (single, single_url, single_body),
                    (distributed, dist_url, dist_body),
                ]
                rows.append((level, *alternate(contenders, args.requests, args.rounds, level)))
                sent += 2 * (args.requests // args.rounds * args.rounds + level * args.rounds)
            time.sleep(3)  # the last views.open calls, and the stand-in's last tally
            tally = standin_tally(standin)
            report(args, rows, single, distributed, tally)
            print(
                f"first request of each workspace after start (1 client): p50 "
                f"{percentile(first, 50) * 1000:.1f} ms, max {max(first) * 1000:.1f} ms"
            )
            if tally["views.open"] != sent or tally["refused"] or tally["responses"]:
                print(f"FAILED: expected {sent} views.open, none refused, no responses: {tally}")
                return 1
            if len(tally["teams"]) != len(teams) + 1:  # type: ignore[arg-type]
                print(f"FAILED: views.open came from {len(tally['teams'])} workspaces")  # type: ignore[arg-type]
                return 1
        finally:
            for proc in (single, distributed, standin):
                proc.stop()
    return 0


def report(args, rows, single: Process, distributed: Process, tally) -> None:  # type: ignore[no-untyped-def]
    backend = "PostgreSQL" if args.backend == "postgres" else "SQLite"
    print(
        f"database: {backend}; {args.workspaces} partner workspaces; "
        f"{args.requests} requests per app and level, {args.rounds} rounds"
    )
    print(
        "| clients | single p50 | distributed p50 | ratio | single p99 | distributed p99 "
        "| ratio | CPU per request (single / distributed web) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for level, (s, s_cpu), (d, d_cpu) in rows:
        s50, d50 = percentile(s, 50) * 1000, percentile(d, 50) * 1000
        s99, d99 = percentile(s, 99) * 1000, percentile(d, 99) * 1000
        worst = max(worst, d50 / s50, d99 / s99)
        print(
            f"| {level} | {s50:.1f} ms | {d50:.1f} ms | {d50 / s50:.2f}x "
            f"| {s99:.1f} ms | {d99:.1f} ms | {d99 / s99:.2f}x "
            f"| {s_cpu * 1000:.2f} / {d_cpu * 1000:.2f} ms |"
        )
    print(
        f"peak RSS (web and worker): single {single.peak_rss_mib():.0f} MiB, "
        f"distributed {distributed.peak_rss_mib():.0f} MiB"
    )
    print(
        f"stand-in: {tally['views.open']} views.open from {len(tally['teams'])} workspaces, "
        f"{tally['refused']} refused for their token, {tally['responses']} response_url posts"
    )
    print(f"worst ratio {worst:.2f}x (goal <= 1.1x)")


if __name__ == "__main__":
    sys.exit(main())
