"""Delivering the outbox: each recorded notice goes out once, retried with backoff until it does.

The service records notices (bot/notices.py) in the same transaction as the change they report.
Senders, registered per kind by the composition root, do the actual sending (Slack, SMTP).
A sender raises to ask for a retry, or `PermanentFailure` to give up on a notice.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import OperationalError

from bot.clock import Clock
from store import deliveries as delivery_store
from store.db import Database

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
)
MAX_ATTEMPTS = 20
CONCURRENCY = 4  # notices sent at once by one process (Slack and SMTP calls wait on the network)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    dedupe_key: str
    payload: dict[str, Any]
    attempt: int  # 1 for the first try
    preregistration_id: int | None


class WakeSignal(Protocol):
    """A threading.Event, or a multiprocessing Event shared with a worker process."""

    def set(self) -> None: ...

    def clear(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


T = TypeVar("T")

PERSIST_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0)
"""How long `persist` waits between attempts: about 24 s, enough for a database restart."""


def persist(write: Callable[[], T], what: str, delays: tuple[float, ...] = PERSIST_DELAYS) -> T:
    """Runs a database write that records something already done outside (a post went out, an
    email was sent), retrying while the database is unreachable. Losing that record would make
    the outbox send the notice again, so a short outage is waited out rather than reported."""
    for delay in delays:
        try:
            return write()
        except OperationalError as exc:
            log.warning("database unavailable while recording %s; retrying: %s", what, exc)
            time.sleep(delay)
    return write()


class PermanentFailure(Exception):
    """The notice can never be sent (e.g. its subject was deleted): stop retrying."""


Sender = Callable[[Job], dict[str, Any] | None]


@dataclass
class SenderRegistry:
    senders: dict[str, Sender] = field(default_factory=dict)

    def register(self, kind: str, sender: Sender) -> None:
        if kind in self.senders:
            raise ValueError(f"a sender for {kind!r} is already registered")
        self.senders[kind] = sender

    def get(self, kind: str) -> Sender | None:
        return self.senders.get(kind)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def backoff_after(attempt: int) -> timedelta:
    return BACKOFF[min(attempt, len(BACKOFF)) - 1]


class Deliverer:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        registry: SenderRegistry,
        max_attempts: int = MAX_ATTEMPTS,
        wake: WakeSignal | None = None,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self._wake = wake if wake is not None else threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def deliver_due(self, now: datetime | None = None, batch: int = 50) -> DeliveryReport:
        """Sends every notice due at `now`; safe to run in several processes at once."""
        sent = retried = failed = 0
        while True:
            at = now or self.clock.now()
            token = uuid.uuid4().hex
            with self.db.session() as s:
                claimed = delivery_store.claim_due(
                    s, now=at, lease_until=at + LEASE, token=token, limit=batch
                )
                jobs = [
                    Job(
                        d.id,
                        d.kind,
                        d.dedupe_key,
                        dict(d.payload),
                        d.attempts,
                        d.preregistration_id,
                    )
                    for d in claimed
                ]
            outcomes = self._send_all(jobs, token, at)
            sent += outcomes.count("sent")
            retried += outcomes.count("retry")
            failed += outcomes.count("failed")
            if self._stop.is_set():
                return DeliveryReport(sent, retried, failed)
            if not jobs:  # until nothing is due: a sent notice may have recorded another
                return DeliveryReport(sent, retried, failed)

    def _send_all(self, jobs: list[Job], token: str, at: datetime) -> list[str]:
        """Sends a claimed batch, `concurrency` at a time. The notices of one preregistration
        go one after the other, in the order they were recorded (a decision must not overtake
        the request it updates)."""
        groups: dict[object, list[Job]] = {}
        for job in jobs:
            key = job.preregistration_id if job.preregistration_id is not None else ("id", job.id)
            groups.setdefault(key, []).append(job)
        if self.concurrency <= 1 or len(groups) <= 1:
            return [o for group in groups.values() for o in self._send_group(group, token, at)]
        with ThreadPoolExecutor(min(self.concurrency, len(groups))) as pool:
            results = pool.map(lambda group: self._send_group(group, token, at), groups.values())
            return [o for outcomes in results for o in outcomes]

    def _send_group(self, jobs: list[Job], token: str, at: datetime) -> list[str]:
        outcomes = []
        for index, job in enumerate(jobs):
            if self._stop.is_set():  # stopping: hand the rest back instead of holding a lease
                self._release(jobs[index:], token)
                break
            outcomes.append(self._send(job, token, at))
        return outcomes

    def _release(self, jobs: list[Job], token: str) -> None:
        try:
            with self.db.session() as s:
                for job in jobs:
                    delivery_store.release(s, job.id, token)
        except Exception:  # noqa: BLE001 - the lease expires anyway; they are retried then
            log.warning("could not release %d claimed notice(s) on stop", len(jobs), exc_info=True)

    def _send(self, job: Job, token: str, at: datetime) -> str:
        sender = self.registry.get(job.kind)
        try:
            if sender is None:
                raise PermanentFailure(f"no sender registered for {job.kind!r}")
            result = sender(job)
        except PermanentFailure as exc:
            log.warning("giving up on %s: %s", job.dedupe_key, exc)
            with self.db.session() as s:
                delivery_store.fail(s, job.id, token, error=str(exc), retry_at=None)
            return "failed"
        except Exception as exc:  # noqa: BLE001 - any failure is retried later
            give_up = job.attempt >= self.max_attempts
            retry_at = None if give_up else self.clock.now() + backoff_after(job.attempt)
            log.warning("delivery %s attempt %d failed: %s", job.dedupe_key, job.attempt, exc)
            with self.db.session() as s:
                delivery_store.fail(
                    s, job.id, token, error=f"{type(exc).__name__}: {exc}", retry_at=retry_at
                )
            return "failed" if give_up else "retry"

        def finish() -> None:
            with self.db.autocommit() as conn:
                delivery_store.finish(conn, job.id, token, now=self.clock.now(), result=result)

        persist(finish, f"that {job.dedupe_key} was sent")
        return "sent"

    # --- a background worker, woken right after a request records a notice ---------------

    def kick(self) -> None:
        """Ask the background worker (a thread here, or the worker process sharing the wake
        signal) to deliver now; a no-op when none runs."""
        self._wake.set()

    def start(self, idle_seconds: float = 5.0) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(idle_seconds,), name="prereg-delivery", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self, idle_seconds: float) -> None:
        while not self._stop.is_set():
            self._wake.wait(idle_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.deliver_due()
            except Exception:  # noqa: BLE001 - keep the worker alive; the next run retries
                log.exception("delivery run failed")
