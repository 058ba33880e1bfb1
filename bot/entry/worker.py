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
finish for at most `SHUTDOWN_GRACE` seconds, then exits; the first stop request arms
SIGALRM for the end of that grace, so the kernel ends the worker then whatever state it is
in (`StopRequest`: why a threading.Event deadlocked it).

The worker is forked, not spawned, when `serve` starts it (issue 15): forked before the web
process starts any thread and after it has imported what both processes use (not what only
one of them uses: bot/entry/server.py `SHARED_WITH_WORKER`), the worker shares those pages
with it copy-on-write instead of importing them again into a second interpreter, and no
multiprocessing resource tracker (a third interpreter, started by every spawn) is needed.
`gc.freeze()` before the fork keeps the collector from touching, and so copying, the shared
objects. A worker started again after it died is spawned: the web process
runs threads by then, and forking a threaded process can leave the child holding a lock that
no thread of it will ever release. That spawned worker brings the resource tracker with it,
which exits by itself once the worker, the last holder of its pipe, is gone. Either way the
worker names itself `prereg-worker` (/proc/PID/comm, what `ps` and `top` show).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import importlib
import logging
import math
import multiprocessing
import os
import select
import signal
import sys
import threading
from collections.abc import Iterable
from multiprocessing.context import BaseContext
from typing import Any

from bot import logs
from bot.entry.observability import mark_dead
from bot.outbox.qr import load_without_pillow
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


class StopRequest:
    """The worker's order to stop: given by its SIGTERM handler, by the parent watchdog, any
    number of times, even while an earlier giving is still running.

    Linux sends the parent-death signal once for each of the dead parent's threads the worker
    is handed to as they exit, so a kill -9 of `serve` is a burst of SIGTERMs. Handling them
    with a `threading.Event` deadlocked the worker: a handler's `set()` ran inside an earlier
    handler's `set()`, which held the Event's lock (a plain, non-reentrant Lock) in the same
    thread, and the parent watchdog then blocked on that lock too. So this takes no lock: a
    flag and a byte down a pipe that `wait()` selects on.

    The first request arms the hard deadline: `signal.alarm`, whose SIGALRM (default action:
    terminate) ends the process `grace` seconds later in the kernel, whatever the interpreter
    is doing then (a lock that is never released, a send that never returns, a start-up that
    has not reached its wait yet).
    """

    def __init__(self, grace: float) -> None:
        self._grace = max(1, math.ceil(grace))
        self._requested = False
        self._reader, self._writer = os.pipe()
        os.set_blocking(self._writer, False)

    def arm(self) -> None:
        """Makes sure SIGALRM ends the process: default action, not blocked. Call in the main
        thread before any other thread starts (they inherit the signal mask)."""
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})

    def set(self, *_: object) -> None:
        """Safe in a signal handler (and in one that interrupted itself)."""
        if not self._requested:
            self._requested = True
            signal.alarm(self._grace)
        with contextlib.suppress(BlockingIOError):  # a full pipe has been told already
            os.write(self._writer, b"\0")

    def is_set(self) -> bool:
        return self._requested

    def wait(self, timeout: float | None = None) -> bool:
        """Whether a stop was requested, waiting up to `timeout` seconds (None: until then)."""
        if not self._requested:
            select.select([self._reader], [], [], timeout)
        return self._requested


def stop_on_signals(grace: float) -> StopRequest:
    """The worker's stop request, given by SIGTERM and SIGINT. Call in the main thread before
    any other thread starts."""
    stop = StopRequest(grace)
    stop.arm()
    signal.signal(signal.SIGTERM, stop.set)
    signal.signal(signal.SIGINT, stop.set)
    return stop


def _watch_parent(parent_pid: int, stop: StopRequest) -> None:
    """Stops the worker once its parent is gone: `os.getppid()` no longer names it."""

    def watch() -> None:
        while not stop.wait(PARENT_CHECK_SECONDS):
            if os.getppid() != parent_pid:
                stop.set()
                log.warning("the serve process is gone; the worker stops")

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def worker_main(settings: Settings, wake: Any, niceness: int, parent_pid: int = 0) -> None:
    """Entry point of the child process."""
    from bot.entry.scheduler import start_scheduler
    from bot.wiring.app import create_services

    stop = stop_on_signals(SHUTDOWN_GRACE)
    parent_pid = parent_pid or os.getppid()
    _signal_on_parent_death(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the kernel was asked to tell
        return
    _prctl(PR_SET_NAME, PROCESS_NAME)
    _watch_parent(parent_pid, stop)
    os.nice(niceness)
    # force: a forked worker has the web process's configuration; replace it.
    logs.configure(logging.INFO, settings.log_format, process_tag="worker")
    load_without_pillow()  # before any thread of this process imports
    services = create_services(settings, wake=wake, worker=True)
    services.deliverer.start()
    scheduler = start_scheduler(services) if settings.run_scheduler else None
    log.info("background worker running (deliveries%s)", ", sweep" if scheduler else "")
    stop.wait()  # then SIGALRM ends the process SHUTDOWN_GRACE seconds on, if nothing else has
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


def _threads() -> int:
    """Threads this process runs, the interpreter's and any a C library started."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _can_fork() -> bool:
    """Forking is safe while this process runs no other thread (and exists only on POSIX)."""
    return hasattr(os, "fork") and threading.active_count() == 1 and _threads() == 1


def prepare_fork(preload: Iterable[str] = ()) -> None:
    """What the web process does right before it forks the worker: imports what both use
    (`preload` and the composition root), then freezes the collector's view of it."""
    for module in ("bot.wiring.app", *preload):
        importlib.import_module(module)
    gc.collect()
    gc.freeze()  # the collector leaves the objects shared with the worker alone


class BackgroundWorker:
    """Starts the worker process and starts it again if it dies.

    Call `start()` before the process starts any thread, so the worker is forked (see the
    module's docstring); it is spawned otherwise."""

    def __init__(self, settings: Settings, niceness: int = NICENESS) -> None:
        self.wake = PipeWake(multiprocessing.get_context("spawn"))
        self._settings = settings
        self._niceness = niceness
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    def start(self, preload: Iterable[str] = ()) -> None:
        """`preload`: modules both processes use, imported before the fork so that they share
        them; the worker's own (the scheduler) it imports after."""
        if _can_fork():
            prepare_fork(preload)
            self._spawn(multiprocessing.get_context("fork"))
        else:
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
                self._spawn(multiprocessing.get_context("spawn"))  # threads run here now

    def stop(self) -> None:
        self._stopping.set()
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
            mark_dead(self._process.pid)
