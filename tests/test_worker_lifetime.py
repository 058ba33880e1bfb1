"""The background worker dies with `serve` (issue 12, defect 2).

kill -9 of the serve process alone (as the OOM killer does) must not leave its worker, or
multiprocessing's resource tracker, running on with the old settings.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from bot.entry.worker import SHUTDOWN_GRACE
from store.migrate import upgrade
from tests.slackapp import RunningApp

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/proc/self/task").is_dir(),
    reason="reads the process tree from /proc",
)


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):  # the task ended meanwhile
            found |= {int(c) for c in task.read_text().split()}
    return found


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for child in children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (a dead child of a PID 1 that does not reap is as good as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def is_worker(pid: int) -> bool:
    """The worker names itself (bot/entry/worker.py), forked or spawned."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "prereg-worker"
    except OSError:
        return False


def wait_for_worker(serve: int) -> set[int]:
    """serve's descendants once its worker runs."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        helpers = descendants(serve)
        if any(is_worker(p) for p in helpers):
            return helpers
        time.sleep(0.1)
    raise AssertionError("no worker process found")


@pytest.mark.reliability("fault", "serve killed with -9 (OOM): its worker dies with it")
def test_worker_and_resource_tracker_die_when_serve_is_killed(
    fake_slack, smtp_server, tmp_path, tried
):
    tried(1)
    helpers: set[int] = set()
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(url)
    app = RunningApp(url, fake_slack, smtp_server, tmp_path).start()
    try:
        serve = app.proc.pid
        helpers = wait_for_worker(serve)

        os.kill(serve, signal.SIGKILL)
        app.proc.wait(5)
        # the worker stops at once, finishing a send in flight for at most SHUTDOWN_GRACE
        deadline = time.monotonic() + SHUTDOWN_GRACE + 3
        while time.monotonic() < deadline and any(running(p) for p in helpers):
            time.sleep(0.1)
        left = {p: cmdline(p) for p in helpers if running(p)}
        assert left == {}, f"still running after serve was killed: {left}"
    finally:
        for pid in descendants(app.proc.pid) | {p for p in helpers if running(p)}:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        app.stop()
