"""Helpers shared by the benchmark scripts: throwaway databases and timing."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.mailbox import free_port
from tests.pgdb import create_database, drop_database
from tests.slackapp import BOT_TOKEN, INVITE_SECRET, MANAGER_CHANNEL, SIGNING_SECRET

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
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh = log.open("wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._fh, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User and system CPU time of the process itself (not its children)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float:
        """VmHWM, the peak resident set size so far, of the process and of its children
        (`serve` runs its background worker as a child process)."""
        return sum(_peak_rss_kib(pid) for pid in [self.pid, *_children(self.pid)]) / 1024

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


def start_slack_standin(workdir: Path) -> tuple[Process, str]:
    script = workdir / "standin.py"
    script.write_text(
        "import sys, time\n"
        "from tests.fakeslack import FakeSlack\n"
        "fake = FakeSlack().start()\n"
        "print(fake.url, flush=True)\n"
        "while True:\n"
        "    time.sleep(5)\n"
        "    fake.calls.clear()\n"
    )
    log = workdir / "standin.log"
    proc = Process([sys.executable, str(script)], {**os.environ, "PYTHONPATH": os.getcwd()}, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text_ = log.read_text().strip()
        if text_.startswith("http"):
            return proc, text_.splitlines()[0]
        time.sleep(0.1)
    raise RuntimeError("Slack stand-in did not start")


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
) -> tuple[Process, str]:
    port = free_port()
    proc = Process(
        [sys.executable, "-m", "bot.entry.cli", "serve"],
        {**app_env(db_url, slack_url, port), **(extra_env or {})},
        workdir / f"{name}.log",
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", proc)
    return proc, base


def start_baseline(slack_url: str, workdir: Path) -> tuple[Process, str]:
    port = free_port()
    env = {
        **os.environ,
        "SLACK_API_URL": slack_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PORT": str(port),
    }
    proc = Process([sys.executable, "-m", "bench.baseline_app"], env, workdir / "baseline.log")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", proc)
    return proc, base


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
