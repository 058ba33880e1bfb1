"""The outbox Deliverer with an injected clock: backoff, lease expiry after a crash between
claim and send, permanent failure, the attempt cap, and idempotent enqueueing."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.outbox.delivery import (
    BACKOFF,
    LEASE,
    Deliverer,
    Job,
    PermanentFailure,
    SenderRegistry,
    backoff_after,
)
from store import deliveries as delivery_store
from tests.conftest import T0
from tests.helpers import form


class Recorder:
    """A sender that fails its first `failures` calls, then records a send."""

    def __init__(self, failures: int = 0, permanent: bool = False) -> None:
        self.failures = failures
        self.permanent = permanent
        self.calls: list[Job] = []
        self.sent: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, job: Job) -> dict[str, Any]:
        with self.lock:
            self.calls.append(job)
            if self.permanent:
                raise PermanentFailure("the subject is gone")
            if len(self.calls) <= self.failures:
                raise ConnectionError("slack unreachable")
            self.sent.append(job.dedupe_key)
        return {"ts": "1.1"}


def deliverer(db, clock, sender: Recorder, **kw: Any) -> Deliverer:
    registry = SenderRegistry()
    registry.register("note", sender)
    return Deliverer(db, clock, registry, **kw)


def enqueue(db, key: str = "note:1", at=T0) -> bool:
    with db.session() as s:
        return delivery_store.enqueue(s, kind="note", dedupe_key=key, payload={"n": 1}, now=at)


def row(db, key: str = "note:1"):
    with db.session() as s:
        return delivery_store.by_key(s, key)


def test_enqueue_is_idempotent_on_the_dedupe_key(db):
    assert enqueue(db) is True
    assert enqueue(db) is False
    assert row(db).status == "pending"


def test_backoff_schedule_grows_then_stays_at_the_last_step():
    assert [backoff_after(n) for n in (1, 2, 3)] == list(BACKOFF[:3])
    assert backoff_after(50) == BACKOFF[-1]


def test_failed_send_is_retried_after_backoff_then_sent_once(db, clock):
    sender = Recorder(failures=2)
    d = deliverer(db, clock, sender)
    enqueue(db)
    assert d.deliver_due().retried == 1
    assert row(db).next_attempt_at == T0 + BACKOFF[0]
    assert "ConnectionError" in row(db).last_error
    clock.advance(BACKOFF[0] - timedelta(seconds=1))
    assert d.deliver_due().retried == 0  # not yet due: nothing claimed
    assert len(sender.calls) == 1
    clock.advance(timedelta(seconds=1))
    assert d.deliver_due().retried == 1
    assert row(db).next_attempt_at == clock.now() + BACKOFF[1]
    clock.advance(BACKOFF[1])
    assert d.deliver_due().sent == 1
    clock.advance(timedelta(hours=5))
    assert d.deliver_due().sent == 0
    assert sender.sent == ["note:1"]
    done = row(db)
    assert (done.status, done.attempts, done.sent_at) == (
        "sent",
        3,
        clock.now() - timedelta(hours=5),
    )


@pytest.mark.reliability("fault", "crash between claim and send (unit)")
def test_crash_between_claim_and_send_is_retried_after_the_lease(db, clock, tried):
    tried(1)
    enqueue(db)
    # A process claims the notice, then dies before sending or recording anything.
    with db.session() as s:
        claimed = delivery_store.claim_due(
            s, now=T0, lease_until=T0 + LEASE, token="dead-process", limit=10
        )
    assert [c.dedupe_key for c in claimed] == ["note:1"]
    sender = Recorder()
    d = deliverer(db, clock, sender)
    clock.advance(LEASE - timedelta(seconds=1))
    assert d.deliver_due().sent == 0  # the lease still holds: not lost, not doubled
    clock.advance(timedelta(seconds=2))
    assert d.deliver_due().sent == 1
    assert d.deliver_due().sent == 0
    assert sender.sent == ["note:1"]
    assert row(db).attempts == 2


def test_late_finish_of_a_dead_claim_changes_nothing(db, clock):
    enqueue(db)
    with db.session() as s:
        delivery_store.claim_due(s, now=T0, lease_until=T0 + LEASE, token="old", limit=10)
    clock.advance(LEASE + timedelta(seconds=1))
    sender = Recorder()
    deliverer(db, clock, sender).deliver_due()
    with db.session() as s:
        assert delivery_store.finish(s, row(db).id, "old", now=clock.now(), result=None) is False
        assert delivery_store.fail(s, row(db).id, "old", error="x", retry_at=None) is False
    assert row(db).status == "sent"


def test_permanent_failure_gives_up_at_once(db, clock):
    sender = Recorder(permanent=True)
    d = deliverer(db, clock, sender)
    enqueue(db)
    assert d.deliver_due().failed == 1
    clock.advance(timedelta(days=1))
    assert d.deliver_due().failed == 0
    assert len(sender.calls) == 1
    assert (row(db).status, row(db).last_error) == ("failed", "the subject is gone")


def test_unknown_kind_fails_permanently(db, clock):
    d = deliverer(db, clock, Recorder())
    with db.session() as s:
        delivery_store.enqueue(s, kind="mystery", dedupe_key="mystery:1", payload={}, now=T0)
    assert d.deliver_due().failed == 1
    assert "no sender" in row(db, "mystery:1").last_error


def test_gives_up_after_max_attempts(db, clock):
    sender = Recorder(failures=100)
    d = deliverer(db, clock, sender, max_attempts=3)
    enqueue(db)
    reports = []
    for _ in range(5):
        reports.append(d.deliver_due())
        clock.advance(timedelta(hours=2))
    assert [(r.retried, r.failed) for r in reports] == [(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    assert len(sender.calls) == 3
    assert row(db).status == "failed"


def test_many_notices_are_sent_in_batches(db, clock):
    sender = Recorder()
    d = deliverer(db, clock, sender)
    for i in range(12):
        enqueue(db, f"note:{i}")
    assert d.deliver_due(batch=5).sent == 12
    assert sorted(sender.sent) == sorted(f"note:{i}" for i in range(12))


@pytest.mark.postgres
def test_parallel_deliverers_send_each_notice_once(pg_only_url, clock):
    from store.db import Database

    db = Database(pg_only_url, pool_size=8)
    try:
        for i in range(60):
            enqueue(db, f"note:{i}")
        sender = Recorder()
        workers = [deliverer(db, clock, sender) for _ in range(4)]
        barrier = threading.Barrier(len(workers))
        totals: list[int] = []

        def run(d: Deliverer) -> None:
            barrier.wait()
            totals.append(d.deliver_due(batch=5).sent)

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sum(totals) == 60
        assert sorted(sender.sent) == sorted(f"note:{i}" for i in range(60))
    finally:
        db.dispose()


def test_notices_of_different_subjects_go_out_concurrently_one_subject_in_order(
    db, clock, service, admin
):
    """Four subjects at once (a sender that waits for four callers proves it), and the two
    notices of one subject strictly in the order recorded."""
    admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    ids = [
        service.preregister("UACME1", form(email=f"c{i}@customer.de")).preregistration.id
        for i in range(4)
    ]
    with db.session() as s:  # the preregistrations recorded their own notices: start clean
        s.query(delivery_store.Delivery).delete()
        for pid in ids:
            for step in ("first", "second"):
                delivery_store.enqueue(
                    s,
                    kind="note",
                    dedupe_key=f"note:{pid}:{step}",
                    payload={"step": step},
                    now=T0,
                    preregistration_id=pid,
                )
    gate = threading.Barrier(4, timeout=5)
    order: list[tuple[int, str]] = []
    lock = threading.Lock()

    def sender(job: Job) -> None:
        if job.payload["step"] == "first":
            gate.wait()  # breaks (and fails the test) unless four run at the same time
        with lock:
            order.append((job.preregistration_id, job.payload["step"]))

    registry = SenderRegistry()
    registry.register("note", sender)
    report = Deliverer(db, clock, registry, concurrency=5).deliver_due()  # 4 slots per kind
    assert report.sent == 8 and report.retried == 0
    for pid in ids:
        assert [step for p, step in order if p == pid] == ["first", "second"]


def two_preregistrations(service: Any, admin: Any) -> tuple[int, int]:
    """The ids of two preregistrations of one partner (notices need a subject to wait on)."""
    admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    a, b = (
        service.preregister("UACME1", form(email=f"w{i}@customer.de")).preregistration.id
        for i in range(2)
    )
    return a, b


def test_a_later_notice_waits_while_an_earlier_one_of_its_subject_is_leased(
    db, clock, service, admin
):
    """The ordered candidates (store/deliveries.py): a notice whose preregistration has an
    earlier notice leased right now is left out; an earlier notice is not held by a later
    one's lease; once the lease has run out the order no longer holds anything back. (First
    written as NOT (subject = x AND id > y), which SQL's NULL logic made true for no notice
    without a subject: the Approve click's, held back by any lease.)"""
    a, b = two_preregistrations(service, admin)
    with db.session() as s:
        s.query(delivery_store.Delivery).delete()
        for key, pid in (("a1", a), ("a2", a), ("b1", b), ("b2", b), ("none", None)):
            delivery_store.enqueue(
                s, kind="note", dedupe_key=key, payload={}, now=T0, preregistration_id=pid
            )
        ids = {d.dedupe_key: d.id for d in s.query(delivery_store.Delivery)}
        leased = delivery_store.claim(
            s, [ids["a1"], ids["b2"]], now=T0, lease_until=T0 + LEASE, token="t1"
        )
        assert len(leased) == 2
    with db.session() as s:
        free = {c.id for c in delivery_store.due_candidates(s, now=T0, limit=10)}
        later = {
            c.id
            for c in delivery_store.due_candidates(
                s, now=T0 + LEASE + timedelta(seconds=1), limit=10
            )
        }
    # a2 waits for a1; b1 comes before the leased b2; a notice of no preregistration never waits
    assert free == {ids["b1"], ids["none"]}
    assert later == set(ids.values())


def test_candidates_read_past_a_page_of_notices_that_wait(db, clock, service, admin):
    """The notices that wait behind a leased one are left out after the read: when a whole
    page of candidates waits, the next page is read, so the free notice behind them is found."""
    a, b = two_preregistrations(service, admin)
    with db.session() as s:
        s.query(delivery_store.Delivery).delete()
        for i in range(7):
            delivery_store.enqueue(
                s, kind="note", dedupe_key=f"a{i}", payload={}, now=T0, preregistration_id=a
            )
        delivery_store.enqueue(
            s, kind="note", dedupe_key="b0", payload={}, now=T0, preregistration_id=b
        )
        ids = {d.dedupe_key: d.id for d in s.query(delivery_store.Delivery)}
        delivery_store.claim(s, [ids["a0"]], now=T0, lease_until=T0 + LEASE, token="t1")
    with db.session() as s:
        found = [c.id for c in delivery_store.due_candidates(s, now=T0, limit=3)]
    assert found == [ids["b0"]]


def test_candidates_keep_one_statement_text_however_many_notices_are_paced(db, clock):
    """On PostgreSQL the paced ids go as one array parameter: psycopg keeps a count per
    statement text on each connection, and an expanding NOT IN made a new text for nearly
    every claim under a burst (the worker's peak memory, docs/performance.md). SQLite keeps
    NOT IN; both leave the paced notices out."""
    with db.session() as s:
        s.query(delivery_store.Delivery).delete()
        for i in range(5):
            delivery_store.enqueue(s, kind="note", dedupe_key=f"n{i}", payload={}, now=T0)
        ids = sorted(d.id for d in s.query(delivery_store.Delivery))
    texts: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "FROM deliveries" in statement and "ORDER BY deliveries.next_attempt_at" in statement:
            texts.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        with db.session() as s:
            found = {
                len(paced): [
                    c.id
                    for c in delivery_store.due_candidates(
                        s, now=T0, limit=10, ordered=False, exclude_ids=paced
                    )
                ]
                for paced in (ids[:1], ids[:3], [*ids[:3], *range(10_000, 10_300)])
            }
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert found == {1: ids[1:], 3: ids[3:], 303: ids[3:]}
    if db.is_postgres:
        assert len(texts) == 3 and len(set(texts)) == 1, texts
