"""The background worker dies with `serve` (issue 12, defect 2).

kill -9 of the serve process alone (as the OOM killer does) must not leave its worker, or
multiprocessing's resource tracker, running on with the old settings.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
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


@pytest.mark.reliability("fault", "serve's worker is forked: one interpreter less, no tracker")
def test_serve_forks_its_worker_and_runs_no_resource_tracker(
    fake_slack, smtp_server, tmp_path, tried
):
    """Issue 15: the worker shares the web process's imported pages (forked, not spawned),
    and no multiprocessing resource tracker runs beside it."""
    tried(1)
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(url)
    app = RunningApp(url, fake_slack, smtp_server, tmp_path).start()
    helpers: set[int] = set()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(is_worker(p) for p in helpers):
            helpers = descendants(app.proc.pid)
            time.sleep(0.1)
        time.sleep(0.5)  # the resource tracker, if any, starts before the worker
        helpers = descendants(app.proc.pid)
        assert {p: cmdline(p) for p in helpers} == {
            p: cmdline(app.proc.pid) for p in helpers if is_worker(p)
        }, "serve's only helper process is its worker, forked (running serve's own program)"
        assert len(helpers) == 1
    finally:
        app.stop()


STOP_STORM = """
import os, signal, sys, threading
from bot.entry.worker import stop_on_signals

stop = stop_on_signals(60)
threading.Thread(target=lambda: stop.wait(), daemon=True).start()  # as the parent watchdog
sent = 0

def storm(frame, event, arg):
    # a SIGTERM at every step of the handler: the next arrives while the last is handled
    global sent
    if sent < 50 and frame.f_code.co_filename != "<string>":
        sent += 1
        os.kill(os.getpid(), signal.SIGTERM)
    return storm

sys.settrace(storm)
os.kill(os.getpid(), signal.SIGTERM)
stop.wait()
sys.settrace(None)
print("stopped; deadline in", signal.alarm(0), "s", flush=True)
"""


@pytest.mark.reliability("fault", "serve killed: a burst of parent-death signals stops the worker")
def test_a_burst_of_stop_signals_stops_the_worker_and_arms_its_deadline(tried):
    """Killing serve sends the worker SIGTERM once per serve thread that it is handed to as
    they exit; a SIGTERM handled while the last is still being handled must neither deadlock
    (as `threading.Event.set` in the handler did) nor put the deadline off."""
    tried(1)
    done = subprocess.run(
        [sys.executable, "-c", STOP_STORM], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "stopped; deadline in 60 s"


HUNG_SHUTDOWN = """
import ctypes, os, signal
from bot.entry.worker import stop_on_signals

stop = stop_on_signals(1)
os.kill(os.getpid(), signal.SIGTERM)
stop.wait()
print("stopping", flush=True)
ctypes.PyDLL(None).sleep(30)  # stuck in C with the interpreter lock held: no thread runs
print("not ended", flush=True)
"""


@pytest.mark.reliability("fault", "worker stuck while stopping: ended at the end of its grace")
def test_a_worker_stuck_while_stopping_ends_at_the_end_of_its_grace(tried):
    """The deadline is the kernel's (SIGALRM's default action), not a thread of the stuck
    interpreter: it ends a worker that holds the interpreter lock and never lets go."""
    tried(1)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", HUNG_SHUTDOWN], capture_output=True, text=True, timeout=20
    )
    assert done.stdout == "stopping\n"
    assert done.returncode == -signal.SIGALRM
    assert time.monotonic() - started < 10
