"""The outbox's lease against a slow far side (issue 12, defect 1): a notice goes out once
however long its send takes, and the claims of a worker that died come back within seconds.

These run on the real clock with a lease of about a second, so a send that outlasts the lease
happens in the test as it does with a 12-second SMTP relay in production.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from bot import notices
from bot.clock import SystemClock
from bot.invitations import Invitations
from bot.outbox import delivery
from bot.outbox.delivery import Deliverer, Job, SenderRegistry
from bot.outbox.mailer import InvitationEmailSender, SmtpConfig
from bot.rules import RuleSettings
from bot.service import PreregistrationService
from store import deliveries as delivery_store
from tests.conftest import T0
from tests.helpers import add_partner, form
from tests.mailbox import SmtpServer

ACME = "UACME1"


def pending(db) -> int:
    with db.session() as s:
        return s.query(delivery_store.Delivery).filter_by(status="pending").count()


def run_until_sent(db, deliverers: list[Deliverer], timeout: float) -> None:
    """The worker's loop (woken often) plus, on every deliverer, a sweep calling
    `deliver_due` on its own timer: the claimers that took the tail of a batch again."""
    stop = threading.Event()

    def sweep(d: Deliverer) -> None:
        while not stop.is_set():
            d.deliver_due()
            stop.wait(0.1)

    deliverers[0].start(idle_seconds=0.1)
    sweeps = [threading.Thread(target=sweep, args=(d,), daemon=True) for d in deliverers]
    for t in sweeps:
        t.start()
    try:
        deadline = time.monotonic() + timeout
        while pending(db) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in sweeps:
            t.join(30)
        for d in deliverers:
            d.stop()


@pytest.mark.reliability("fault", "slow SMTP relay (sends outlast the lease): each email once")
def test_slow_smtp_relay_gets_each_invitation_exactly_once(db, admin, monkeypatch, tried):
    invitations_count = 16
    tried(invitations_count)
    monkeypatch.setattr(delivery, "LEASE", timedelta(seconds=1))
    relay = SmtpServer(delay=0.4).start()  # 16 emails, 4 at a time: the batch outlasts 1 s
    try:
        add_partner(admin, "Acme GmbH", ACME)
        service = PreregistrationService(db, SystemClock(), RuleSettings())
        for i in range(invitations_count):
            service.preregister(ACME, form(email=f"c{i}@customer.de", name=f"Customer {i}"))
        invitations = Invitations(service, "lease-test-secret", "https://prereg.example.com")
        config = SmtpConfig("127.0.0.1", relay.port, "bot@vendor.example", timeout=10)

        def worker() -> Deliverer:
            registry = SenderRegistry()
            registry.register(
                notices.INVITATION_EMAIL, InvitationEmailSender(service, invitations, config)
            )
            return Deliverer(db, service.clock, registry)

        # this worker (its loop and its sweep) and a second process's worker
        run_until_sent(db, [worker(), worker()], timeout=60)
        time.sleep(0.5)  # a doubled send still on the wire lands too
        to = Counter(r.rcpt_tos[0] for r in relay.mailbox.messages)
        assert pending(db) == 0
        assert {a: n for a, n in to.items() if n > 1} == {}
        assert len(relay.mailbox.messages) == invitations_count
    finally:
        relay.stop()


@pytest.mark.reliability("fault", "one send longer than the lease: not taken over")
def test_a_send_longer_than_the_lease_is_not_taken_over(db, monkeypatch, tried):
    tried(1)
    monkeypatch.setattr(delivery, "LEASE", timedelta(seconds=0.6))
    calls: list[str] = []

    def slow(job: Job) -> None:
        calls.append(job.dedupe_key)
        time.sleep(2.0)  # more than three leases: only the live worker's renewals hold it

    def worker() -> Deliverer:
        registry = SenderRegistry()
        registry.register("note", slow)
        return Deliverer(db, SystemClock(), registry)

    with db.session() as s:
        delivery_store.enqueue(
            s, kind="note", dedupe_key="note:1", payload={}, now=SystemClock().now()
        )
    run_until_sent(db, [worker(), worker()], timeout=20)
    assert calls == ["note:1"]


@pytest.mark.reliability("fault", "worker killed holding claims: notices back within seconds")
def test_claims_of_a_dead_worker_come_back_within_seconds(db, clock, tried):
    tried(1)
    with db.session() as s:
        delivery_store.enqueue(s, kind="note", dedupe_key="note:1", payload={}, now=T0)
        # a worker claims it with the lease every worker takes, then is killed (-9)
        delivery_store.claim_due(
            s, now=T0, lease_until=T0 + delivery.LEASE, token="killed", limit=50
        )
    sent: list[str] = []
    registry = SenderRegistry()
    registry.register("note", lambda job: sent.append(job.dedupe_key))
    d = Deliverer(db, clock, registry)
    clock.advance(timedelta(seconds=31))
    assert d.deliver_due().sent == 1
    assert sent == ["note:1"]
