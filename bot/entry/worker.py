"""The background worker process of `serve` and `socket`: delivers the outbox and runs the
scheduled sweep, at a lower CPU priority than the process that answers Slack.

Keeping this work out of the web process means no notice, QR code or email competes with an
ack for the interpreter lock, and the kernel favours the acks when the machine is busy. The
web process wakes the worker through a pipe right after it records a notice; the worker also
wakes on its own every few seconds, and the sweep is the backstop.

The worker dies with its parent (issue 12): after a kill -9 of `serve` (the OOM killer), an
orphaned worker went on sending through the old SMTP relay with links signed by the old
INVITE_SECRET while the restarted `serve` ran a second worker on the new settings. On Linux
the kernel sends the worker SIGTERM when its parent dies (PR_SET_PDEATHSIG); everywhere a
watchdog thread sees the parent gone (`os.getppid()` changes when the worker is reparented)
within a second. Either way the worker stops claiming at once, lets the sends in flight
finish for at most `SHUTDOWN_GRACE` seconds, then exits.

The worker is a spawned interpreter, with multiprocessing's resource tracker beside it, which
exits by itself once the worker, the last holder of its pipe, is gone. Forking it after the
shared imports (issue 15: 148 -> 118 MiB PSS) was tried and undone this session: under the full
suite a forked worker outlived a kill -9 of `serve`. The worker names itself `prereg-worker`
(/proc/PID/comm, what `ps` and `top` show).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys
import threading
from multiprocessing.context import BaseContext
from typing import Any

from bot import logs
from bot.entry.observability import mark_dead
from bot.settings import Settings

log = logging.getLogger(__name__)

NICENESS = 10
RESTART_CHECK_SECONDS = 1.0
PARENT_CHECK_SECONDS = 0.5
SHUTDOWN_GRACE = 10.0
"""Seconds a stopping worker gives its sends in flight before it exits regardless."""
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PR_SET_NAME = 15
PROCESS_NAME = b"prereg-worker"


def _prctl(option: int, arg: int | bytes) -> bool:
    """Linux's prctl(2); False where it is missing or refused."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(option, arg, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _signal_on_parent_death(signum: int) -> bool:
    """Asks Linux to send `signum` to this process when its parent dies. Returns whether
    that is in place (not on other systems; the watchdog covers them)."""
    return _prctl(PR_SET_PDEATHSIG, signum)


def _watch_parent(parent_pid: int, stop: threading.Event) -> None:
    """Stops the worker once its parent is gone: `os.getppid()` no longer names it."""

    def watch() -> None:
        while not stop.wait(PARENT_CHECK_SECONDS):
            if os.getppid() != parent_pid:
                log.warning("the serve process is gone; the worker stops")
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _exit_after(seconds: float) -> None:
    """Ends the process after `seconds` whatever still runs (a send stuck on a slow relay)."""
    timer = threading.Timer(seconds, os._exit, args=(0,))
    timer.daemon = True
    timer.start()


def worker_main(settings: Settings, wake: Any, niceness: int, parent_pid: int = 0) -> None:
    """Entry point of the child process."""
    from bot.entry.scheduler import start_scheduler
    from bot.wiring.app import create_services

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent_pid = parent_pid or os.getppid()
    _signal_on_parent_death(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the kernel was asked to tell
        return
    _prctl(PR_SET_NAME, PROCESS_NAME)
    _watch_parent(parent_pid, stop)
    os.nice(niceness)
    # force: a forked worker has the web process's configuration; replace it.
    logs.configure(logging.INFO, settings.log_format, process_tag="worker")
    services = create_services(settings, wake=wake, worker=True)
    services.deliverer.start()
    scheduler = start_scheduler(services) if settings.run_scheduler else None
    log.info("background worker running (deliveries%s)", ", sweep" if scheduler else "")
    stop.wait()
    _exit_after(SHUTDOWN_GRACE)
    if scheduler is not None:
        scheduler.shutdown(wait=False)
    services.deliverer.stop()
    services.db.dispose()


class PipeWake:
    """The web process's wake-up call to the worker: one byte down a pipe, never waiting.

    multiprocessing's Event was used first, but its `set()` waits until every sleeping waiter
    has woken; with the worker niced and the machine busy, that held each Approve click's
    thread for milliseconds and cost ~1 ms of CPU per click (bench/ack_latency.py).
    """

    def __init__(self, ctx: BaseContext) -> None:
        self._reader, self._writer = ctx.Pipe(duplex=False)
        os.set_blocking(self._writer.fileno(), False)
        os.set_blocking(self._reader.fileno(), False)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe is wake-up enough
            os.write(self._writer.fileno(), b"\0")

    def wait(self, timeout: float | None = None) -> bool:
        return self._reader.poll(timeout)

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):  # drained
            while os.read(self._reader.fileno(), 4096):
                pass


class BackgroundWorker:
    """Starts the worker process and starts it again if it dies.

    The worker is a spawned interpreter: forking it (issue 15's footprint) left a worker alive
    after `serve` was killed -9 under load in the full suite, so it is not done."""

    def __init__(self, settings: Settings, niceness: int = NICENESS) -> None:
        self.wake = PipeWake(multiprocessing.get_context("spawn"))
        self._settings = settings
        self._niceness = niceness
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    def start(self) -> None:
        self._spawn(multiprocessing.get_context("spawn"))
        self._monitor = threading.Thread(target=self._watch, name="worker-monitor", daemon=True)
        self._monitor.start()

    def _spawn(self, ctx: BaseContext) -> None:
        self._process = ctx.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(self._settings, self.wake, self._niceness, os.getpid()),
            name="prereg-bot-worker",
            daemon=True,
        )
        self._process.start()

    def _watch(self) -> None:
        while not self._stopping.wait(RESTART_CHECK_SECONDS):
            if self._process is not None and not self._process.is_alive():
                log.error(
                    "background worker exited (%s); starting it again", self._process.exitcode
                )
                mark_dead(self._process.pid)
                self._spawn(multiprocessing.get_context("spawn"))

    def stop(self) -> None:
        self._stopping.set()
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
            mark_dead(self._process.pid)
