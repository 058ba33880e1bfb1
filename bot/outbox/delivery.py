"""Delivering the outbox: each recorded notice goes out once, retried with backoff until it does.

The service records notices (bot/notices.py) in the same transaction as the change they report.
Senders, registered per kind by the composition root, do the actual sending (Slack, SMTP).
A sender raises to ask for a retry, or `PermanentFailure` to give up on a notice.

How a notice is sent once, however slow the far side (issue 12):

- Claim only what can be sent now. A process claims a notice only into a free sender slot,
  so no claimed notice waits behind others (a batch of 50 claimed for 4 slots outlived its
  lease behind a slow SMTP relay, and the tail was claimed and emailed again).
- A short lease, renewed while the send is in flight. A claim holds for `LEASE` (30 s); the
  process that claimed renews the leases of its sends in flight every third of that
  (`Deliverer.deliver_due`), so a send may take as long as the relay needs, while the claims
  of a process that died come back within `LEASE` instead of minutes. Marking a notice sent
  or failed checks the claim's token, so a claim that was lost records nothing. (A database
  outage longer than `LEASE` during a send can still let another process take that notice:
  the renewal says so in the log.)
- Lanes. Decisions (an Approve click) have slots of their own, and in the other lane no
  kind may hold every slot: a slow relay holds at most `concurrency - 1`, so a Slack post
  never waits for a run of emails either.
- Order. A notice waits while an earlier notice of its preregistration is leased (being
  sent by any process), and one claim takes at most one notice of a preregistration.
- Pace (issue 17). A sender whose Slack call would go over Slack's rate limit for its channel
  or workspace raises `Paced` before it has written anything (bot/pacing.py). The notice is
  given back at once (the claim not counted as an attempt) and this process leaves it out of
  its claims until its channel has a turn again (one notice per turn), so its slot goes to a
  notice for another channel meanwhile, and a burst to one channel is sent at the pace Slack
  allows. A `deliver_due` with nothing left but paced notices waits for the first turn.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import OperationalError

from bot import logs, metrics, notices
from bot.clock import Clock
from bot.pacing import Key, Paced, deferrable
from store import deliveries as delivery_store
from store.db import Database

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)
"""How long a claim holds without a renewal from the process sending it (see above)."""
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
)
MAX_ATTEMPTS = 20
CONCURRENCY = 5
"""Notices sent at once by one process (Slack and SMTP calls wait on the network); one kind
may hold all but one of these slots."""
FAST_KINDS = frozenset({notices.DECISION_CLICK})
"""Kinds that only change the database: their own lane, never behind an external send."""
FAST_SLOTS = 2
CANDIDATES = 50  # due notices looked at per claim


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


@dataclass(frozen=True)
class Lane:
    """Sender slots for some kinds (`kinds`), or for every kind no other lane names (None)."""

    name: str
    kinds: frozenset[str] | None
    slots: int
    per_kind: int  # the most slots one kind may hold


@dataclass(frozen=True)
class _InFlight:
    lane: str
    kind: str
    token: str


class Deliverer:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        registry: SenderRegistry,
        max_attempts: int = MAX_ATTEMPTS,
        wake: WakeSignal | None = None,
        concurrency: int = CONCURRENCY,
        lease: timedelta | None = None,
        fast_kinds: Collection[str] = FAST_KINDS,
        fast_slots: int = FAST_SLOTS,
    ) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.lease = lease if lease is not None else LEASE
        slots = max(1, concurrency)
        self.lanes = (
            Lane("fast", frozenset(fast_kinds), fast_slots, fast_slots),
            Lane("notices", None, slots, max(1, slots - 1)),
        )
        self._in_flight: dict[int, _InFlight] = {}  # across every deliver_due of this process
        self._paced: dict[Key, _Queue] = {}  # pace bucket -> the notices waiting for it
        self._claiming = threading.Lock()
        self._wake = wake if wake is not None else threading.Event()
        self._kicked = threading.Event()  # the wake, relayed to the delivering thread
        self._stirs: set[threading.Event] = set()  # one per deliver_due running here
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def deliver_due(self, now: datetime | None = None, batch: int = CANDIDATES) -> DeliveryReport:
        """Sends every notice due at `now`, until none is left (a sent notice may record
        another); safe to run in several threads and processes at once. Claims fill free
        slots as sends finish, and the leases of this call's sends are renewed meanwhile.
        A wake-up (`kick`, or the web process's) while it waits on its sends makes it claim
        at once: an Approve click does not wait for a slow email in flight to finish."""
        outcomes: list[str] = []
        mine: dict[Future[str], tuple[int, str]] = {}  # future -> (notice id, claim token)
        heartbeat = self.lease.total_seconds() / 3
        stir = threading.Event()  # set by a send finishing, a wake-up, or stop()
        with self._claiming:
            self._stirs.add(stir)
        try:
            with ThreadPoolExecutor(sum(lane.slots for lane in self.lanes), "prereg-send") as pool:
                renew_at = time.monotonic() + heartbeat
                while True:
                    stir.clear()  # before claiming: what comes after is seen by the wait
                    if not self._stop.is_set():
                        for job, token in self._claim_or_wait(now, batch, bool(mine)):
                            future = pool.submit(self._send_claimed, job, token)
                            future.add_done_callback(lambda _: stir.set())
                            mine[future] = (job.id, token)
                    if not mine:
                        pause = self._until_next_turn()
                        if pause is None or self._stop.is_set():
                            break
                        stir.wait(pause)
                        continue
                    if not any(future.done() for future in mine):
                        stir.wait(max(0.0, renew_at - time.monotonic()))
                    for future in [future for future in mine if future.done()]:
                        del mine[future]
                        outcomes.append(future.result())
                    if mine and time.monotonic() >= renew_at:
                        self._renew(dict(mine.values()))
                        renew_at = time.monotonic() + heartbeat
        finally:
            with self._claiming:
                self._stirs.discard(stir)
        return DeliveryReport(
            outcomes.count("sent"), outcomes.count("retry"), outcomes.count("failed")
        )

    def _claim_or_wait(
        self, now: datetime | None, batch: int, sending: bool
    ) -> list[tuple[Job, str]]:
        """`_claim`; a database error while sends are in flight is logged and the claim
        tried again once one finishes (those sends still need their leases renewed)."""
        try:
            return self._claim(now, batch)
        except OperationalError as exc:
            if not sending:
                raise
            log.warning("database unavailable while claiming notices; retrying: %s", exc)
            return []

    def _claim(self, now: datetime | None, batch: int) -> list[tuple[Job, str]]:
        """Claims due notices into this process's free slots, lane by lane."""
        with self._claiming:
            free = self._free_slots()
            if not any(free.values()):
                return []
            at = now or self.clock.now()
            lease_until = max(at, self.clock.now()) + self.lease
            token = uuid.uuid4().hex
            taken: set[int] = set()  # preregistrations given a notice by this claim
            claimed: list[tuple[Job, str]] = []
            # Autocommit: each statement stands alone (the claim re-checks what the read saw).
            with self.db.autocommit() as s:
                for lane in self.lanes:
                    if not free[lane.name]:
                        continue
                    held = Counter(f.kind for f in self._in_flight.values() if f.lane == lane.name)
                    full = {kind for kind, n in held.items() if n >= lane.per_kind}
                    others = {k for other in self.lanes if other.kinds for k in other.kinds}
                    candidates = delivery_store.due_candidates(
                        s,
                        now=at,
                        limit=batch,
                        kinds=lane.kinds,
                        exclude_kinds=full | (set() if lane.kinds else others),
                        exclude_ids=self._waiting_their_turn(),
                    )
                    ids = _pick(candidates, free[lane.name], lane.per_kind, held, taken)
                    rows = delivery_store.claim(
                        s, ids, now=at, lease_until=lease_until, token=f"{token}{lane.name[0]}"
                    )
                    for d in rows:
                        job = Job(
                            d.id,
                            d.kind,
                            d.dedupe_key,
                            dict(d.payload),
                            d.attempts,
                            d.preregistration_id,
                        )
                        claimed.append((job, d.claim_token or ""))
            for job, row_token in claimed:  # committed: now they are this process's to send
                lane = self._lane_of(job.kind)
                self._in_flight[job.id] = _InFlight(lane.name, job.kind, row_token)
            return claimed

    def _waiting_their_turn(self) -> set[int]:
        """The paced notices to leave out of this claim (caller holds `_claiming`): each
        bucket whose turn has come lets its oldest notice through, one per turn, so a busy
        channel's backlog does not crowd the candidates of the others."""
        now = time.monotonic()
        waiting: set[int] = set()
        for key, queue in list(self._paced.items()):
            if queue.turn <= now and queue.ids:
                queue.ids.remove(min(queue.ids))
                queue.turn = now + queue.interval
            if not queue.ids:
                del self._paced[key]
            waiting |= queue.ids
        return waiting

    def _until_next_turn(self) -> float | None:
        """Seconds until the first paced notice's turn; None when none waits."""
        with self._claiming:
            turns = [queue.turn for queue in self._paced.values() if queue.ids]
            return max(0.0, min(turns) - time.monotonic()) if turns else None

    def _free_slots(self) -> dict[str, int]:
        busy = Counter(f.lane for f in self._in_flight.values())
        return {lane.name: max(0, lane.slots - busy[lane.name]) for lane in self.lanes}

    def _lane_of(self, kind: str) -> Lane:
        for lane in self.lanes:
            if lane.kinds is None or kind in lane.kinds:
                return lane
        return self.lanes[-1]

    def _renew(self, held: dict[int, str]) -> None:
        """The heartbeat: extends the leases of this call's sends in flight."""
        try:
            with self.db.session() as s:
                kept = delivery_store.renew(s, held, lease_until=self.clock.now() + self.lease)
        except OperationalError as exc:
            log.warning("could not renew the leases of %d notice(s) in flight: %s", len(held), exc)
            return
        lost = [i for i in held if i not in kept and i in self._in_flight]
        if lost:
            log.warning("lost the claim on %d notice(s) still being sent", len(lost))

    def _send_claimed(self, job: Job, token: str) -> str:
        with logs.bound(notice=job.dedupe_key, preregistration_id=job.preregistration_id):
            outcome = self._send_counted(job, token)
        metrics.DELIVERIES.labels(job.kind, _OUTCOMES.get(outcome, outcome)).inc()
        return outcome

    def _send_counted(self, job: Job, token: str) -> str:
        try:
            return self._send(job, token)
        except Exception as exc:  # noqa: BLE001 - not recorded: the lease expires, it is retried
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            log.warning(
                "delivery %s could not be recorded (%s: %s); its lease will expire and it is "
                "tried again",
                job.dedupe_key,
                type(exc).__name__,
                first,
            )
            return "retry"
        finally:
            with self._claiming:
                self._in_flight.pop(job.id, None)

    def _give_back(self, job: Job, token: str, paced: Paced) -> str:
        """A paced notice: released for its next turn, not counted as an attempt."""
        wait = paced.wait
        with self._claiming:
            queue = self._paced.setdefault(wait.key, _Queue(0.0, wait.interval))
            queue.turn = time.monotonic() + wait.seconds
            queue.ids.add(job.id)
        with self.db.autocommit() as conn:
            delivery_store.release(conn, job.id, token)
        return "paced"

    def _send(self, job: Job, token: str) -> str:
        sender = self.registry.get(job.kind)
        try:
            if sender is None:
                raise PermanentFailure(f"no sender registered for {job.kind!r}")
            with deferrable():
                result = sender(job)
        except Paced as paced:
            return self._give_back(job, token, paced)
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
                if not delivery_store.finish(
                    conn, job.id, token, now=self.clock.now(), result=result
                ):
                    log.warning("sent %s after its claim was lost", job.dedupe_key)

        persist(finish, f"that {job.dedupe_key} was sent")
        log.info("sent %s (attempt %d)", job.dedupe_key, job.attempt)
        return "sent"

    def hand_back(self, dedupe_key: str, token: str, payload: dict[str, Any]) -> bool:
        """Gives a notice a sender held (store/deliveries.py `hold`) back to the outbox with
        `payload`, what is left of it to send, and wakes the sending. If the database cannot
        take it now, the hold's lease expires and the outbox sends the whole notice again."""
        try:
            with self.db.autocommit() as conn:
                given = delivery_store.hand_back(conn, dedupe_key, token, payload)
        except OperationalError as exc:
            log.warning("could not hand %s back; it goes after its lease: %s", dedupe_key, exc)
            return False
        self.kick()
        return given

    # --- a background worker, woken right after a request records a notice ---------------

    def kick(self) -> None:
        """Ask the background worker (a thread here, or the worker process sharing the wake
        signal) to deliver now; a no-op when none runs."""
        self._wake.set()

    def start(self, idle_seconds: float = 5.0) -> None:
        """Two threads: one waits for wake-ups and passes each on at once, to a run in
        progress as well (`_relay`); the other runs `deliver_due` when told, or every
        `idle_seconds`."""
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._relay, name="prereg-wake", daemon=True),
            threading.Thread(
                target=self._run, args=(idle_seconds,), name="prereg-delivery", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._kicked.set()
        self._stir()
        for thread in self._threads:
            thread.join(10)
        self._threads = []

    def _stir(self) -> None:
        """Makes every `deliver_due` running here claim now."""
        with self._claiming:
            for stir in self._stirs:
                stir.set()

    def _relay(self) -> None:
        while not self._stop.is_set():
            if not self._wake.wait(1.0):
                continue
            self._wake.clear()
            self._kicked.set()  # a run starting or about to end runs again
            self._stir()  # a run waiting on its sends claims now

    def _run(self, idle_seconds: float) -> None:
        while not self._stop.is_set():
            self._kicked.wait(idle_seconds)
            self._kicked.clear()
            if self._stop.is_set():
                return
            try:
                self.deliver_due()
            except Exception:  # noqa: BLE001 - keep the worker alive; the next run retries
                log.exception("delivery run failed")


_OUTCOMES = {"retry": "retried"}


@dataclass
class _Queue:
    """Paced notices waiting for one pace bucket: the next is let through at `turn`."""

    turn: float
    interval: float
    ids: set[int] = field(default_factory=set)


def _pick(
    candidates: Iterable[delivery_store.Candidate],
    free: int,
    per_kind: int,
    held: Counter[str],
    taken: set[int],
) -> list[int]:
    """The candidates to claim into `free` slots: no kind past `per_kind` (counting `held`,
    those in flight), and per preregistration only its first due notice, once per claim."""
    candidates = list(candidates)
    first: dict[int, int] = {}
    for c in candidates:
        if c.preregistration_id is not None:
            first[c.preregistration_id] = min(c.id, first.get(c.preregistration_id, c.id))
    kinds = Counter(held)
    picked: list[int] = []
    for c in candidates:
        if len(picked) >= free:
            break
        pid = c.preregistration_id
        if pid is not None and (pid in taken or first[pid] != c.id):
            continue
        if kinds[c.kind] >= per_kind:
            continue
        kinds[c.kind] += 1
        picked.append(c.id)
        if pid is not None:
            taken.add(pid)
    return picked
