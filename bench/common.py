"""Helpers shared by the benchmark scripts: throwaway databases and timing."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.mailbox import free_port
from tests.pgdb import create_database, drop_database
from tests.slackapp import BOT_TOKEN, INVITE_SECRET, MANAGER_CHANNEL, SIGNING_SECRET, sign

PG_ADMIN_URL = os.environ.get(
    "PREREG_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    name = f"prereg_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(PG_ADMIN_URL, name)
    try:
        yield url
    finally:
        drop_database(PG_ADMIN_URL, name)


@contextmanager
def scratch_sqlite(directory: Path) -> Iterator[str]:
    path = directory / f"bench-{uuid.uuid4().hex[:8]}.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


# --- running the app and its Slack stand-in as separate processes --------------------------


class Process:
    def __init__(
        self, args: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
    ) -> None:
        self.log = log
        self._fh = log.open("wb")
        self.proc = subprocess.Popen(
            args, env=env, stdout=self._fh, stderr=subprocess.STDOUT, cwd=cwd
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User and system CPU time of the process itself (not its children)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tree_cpu_seconds(self) -> float:
        """CPU time of the process and its children (`serve`'s worker), those alive now."""
        total = 0.0
        for pid in [self.pid, *_children(self.pid)]:
            with contextlib.suppress(OSError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def peak_rss_mib(self) -> float:
        """VmHWM, the peak resident set size so far, of the process and of its children
        (`serve` runs its background worker as a child process)."""
        return sum(_peak_rss_kib(pid) for pid in [self.pid, *_children(self.pid)]) / 1024

    def memory_kib(self) -> dict[int, tuple[int, int]]:
        """(PSS, RSS) in KiB of the process and each of its children, from smaps_rollup. PSS
        divides each shared page among the processes sharing it, so the sum over a process
        tree counts every page once."""
        found = {}
        for pid in [self.pid, *_children(self.pid)]:
            with contextlib.suppress(OSError):  # the process ended meanwhile
                fields = dict(
                    line.split(":", 1)
                    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
                )
                found[pid] = (int(fields["Pss"].split()[0]), int(fields["Rss"].split()[0]))
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._fh.close()


def _peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found + [g for c in found for g in _children(c)]


def wait_http(url: str, proc: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"process exited: {proc.log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def start_slack_standin(workdir: Path, workspaces: Path | None = None) -> tuple[Process, str]:
    """The fake Slack in its own process. `workspaces` (JSON) makes it a multi-workspace Slack:
    `{"live": [[team, name, token], ...], "install": [[team, name], ...]}`: the live tokens
    answer as their workspace (any other token is refused), and for each `install` it prints
    `code TEAM CODE`, the one-time code of an OAuth install (tests/fakeslack.py). Every 2 s
    it prints a `tally` line: views.open calls, those refused for their token, response_url
    posts and the teams whose tokens were used (see `standin_tally`)."""
    script = workdir / "standin.py"
    script.write_text(
        "import json, sys, time\n"
        "from tests.fakeslack import FakeSlack, Workspace\n"
        "fake = FakeSlack()\n"
        "spec = json.load(open(sys.argv[1])) if len(sys.argv) > 1 else {}\n"
        "for team, name, token in spec.get('live', []):\n"
        "    fake.tokens[token] = Workspace(team, name, token=token)\n"
        "fake.start()\n"
        "print(fake.url, flush=True)\n"
        "for team, name in spec.get('install', []):\n"
        "    print('code', team, fake.install(Workspace(team, name)), flush=True)\n"
        "while True:\n"
        "    time.sleep(2)\n"
        "    with fake._lock:\n"
        "        calls, fake.calls[:] = list(fake.calls), []\n"
        "        responses = len(fake.responses)\n"
        "        fake.responses.clear()\n"
        "    opened = [c for c in calls if c.method == 'views.open']\n"
        "    known = [fake.tokens[c.token] for c in opened if c.token in fake.tokens]\n"
        "    tally = {'views.open': len(opened), 'refused': 0 if not fake.tokens\n"
        "             else len(opened) - len(known), 'responses': responses,\n"
        "             'teams': sorted({w.team_id for w in known})}\n"
        "    print('tally', json.dumps(tally), flush=True)\n"
    )
    log = workdir / "standin.log"
    args = [sys.executable, str(script), *([str(workspaces)] if workspaces else [])]
    proc = Process(args, {**os.environ, "PYTHONPATH": os.getcwd()}, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text_ = log.read_text().strip()
        if text_.startswith("http"):
            return proc, text_.splitlines()[0]
        time.sleep(0.1)
    raise RuntimeError("Slack stand-in did not start")


def standin_tally(proc: Process) -> dict[str, object]:
    """What the stand-in's `tally` lines add up to so far."""
    total: dict[str, object] = {"views.open": 0, "refused": 0, "responses": 0, "teams": set()}
    for line in proc.log.read_text().splitlines():
        if line.startswith("tally "):
            tally = json.loads(line[6:])
            for key in ("views.open", "refused", "responses"):
                total[key] += tally[key]  # type: ignore[operator]
            total["teams"] |= set(tally["teams"])  # type: ignore[operator]
    return total


def app_env(db_url: str, slack_url: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "SLACK_API_URL": slack_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "MANAGER_CHANNEL_ID": MANAGER_CHANNEL,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "INVITE_SECRET": INVITE_SECRET,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(free_port()),
        "SMTP_FROM": "bench@vendor.example",
        "PORT": str(port),
    }


def start_prereg(
    db_url: str,
    slack_url: str,
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    name: str = "serve",
    source: Path | None = None,
) -> tuple[Process, str]:
    """`serve` of this checkout, or of the source tree `source` (another version of the code,
    e.g. `git archive HEAD~1 | tar -x -C DIR`, run side by side with this one)."""
    port = free_port()
    env = {**app_env(db_url, slack_url, port), **(extra_env or {})}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    proc = Process(
        [sys.executable, "-m", "bot.entry.cli", "serve"], env, workdir / f"{name}.log", source
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", proc)
    return proc, base


def start_baseline(
    slack_url: str, workdir: Path, answer_in_ack: bool = False, read_url: str = ""
) -> tuple[Process, str]:
    """bench/baseline_app.py; `answer_in_ack`: its `/preregister <text>` answer goes in the ack
    (BASELINE_ANSWER_IN_ACK) instead of to response_url; `read_url`: that answer is serve's list
    page read from this database (BASELINE_READ_URL, bench/floor.py)."""
    port = free_port()
    env = {
        **os.environ,
        "SLACK_API_URL": slack_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PORT": str(port),
        "BASELINE_ANSWER_IN_ACK": "1" if answer_in_ack else "",
        "BASELINE_READ_URL": read_url,
    }
    name = (
        "baseline-read.log" if read_url else "baseline-ack.log" if answer_in_ack else "baseline.log"
    )
    proc = Process([sys.executable, "-m", "bench.baseline_app"], env, workdir / name)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", proc)
    return proc, base


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# --- the load: signed requests from client threads, apps taking turns -------------------------


def measure(base_url: str, bodies: Callable[[], str], total: int, clients: int) -> list[float]:
    """Round trips of `total` requests from `clients` threads, each with one keep-alive
    connection that is opened (and warmed) before the clock starts and closed afterwards: a
    connection left open would count against the server's connection limit in the next run.

    The client is http.client, not requests: the load generator shares the two cores with the
    apps, and requests costs several times more CPU per call, which only adds noise."""
    address = urllib.parse.urlsplit(base_url)
    local = threading.local()
    lock = threading.Lock()
    connections: list[http.client.HTTPConnection] = []
    everyone = threading.Barrier(clients)

    def one(_: int) -> float:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(
                address.hostname, address.port, timeout=30
            )
            with lock:
                connections.append(conn)
        with lock:
            body = bodies()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
        start = time.perf_counter()
        conn.request("POST", "/slack/events", body=body.encode(), headers=headers)
        response = conn.getresponse()
        answer = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {answer[:200]!r}")
        return elapsed

    def warm_up(n: int) -> float:
        everyone.wait()  # one request on every thread, so every connection is open
        return one(n)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        try:
            list(pool.map(warm_up, range(clients)))
            return list(pool.map(one, range(total)))
        finally:
            for conn in connections:
                conn.close()


Contender = tuple[Process, str, Callable[[], str]]


def alternate(
    contenders: list[Contender], total: int, rounds: int, clients: int
) -> tuple[tuple[list[float], float], ...]:
    """Round trips and CPU seconds per request of each app, taking turns `rounds` times so
    that a passing hiccup of the machine hits all of them."""
    latencies: list[list[float]] = [[] for _ in contenders]
    cpu = [0.0 for _ in contenders]
    for _ in range(rounds):
        for i, (proc, url, body) in enumerate(contenders):
            before = proc.cpu_seconds()
            latencies[i] += measure(url, body, total // rounds, clients)
            cpu[i] += proc.cpu_seconds() - before
    return tuple((lat, seconds / len(lat)) for lat, seconds in zip(latencies, cpu, strict=True))
