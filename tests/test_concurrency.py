"""R4 and R5 under concurrency: many threads, one PostgreSQL, exactly one winner / exactly 100."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from bot.admin import Admin
from bot.errors import Refused
from bot.rules import RuleSettings
from bot.service import PreregistrationService
from store.db import Database
from store.models import Preregistration
from tests.helpers import form

pytestmark = pytest.mark.postgres


def _race(workers: list) -> list[object]:
    barrier = threading.Barrier(len(workers))
    results: list[object] = [None] * len(workers)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = workers[i]()
        except Exception as exc:  # noqa: BLE001 - the outcome is what we assert on
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def pg(pg_only_url, clock):
    database = Database(pg_only_url, pool_size=25, max_overflow=5)
    yield database, PreregistrationService(database, clock, RuleSettings()), Admin(database, clock)
    database.dispose()


@pytest.mark.reliability("load", "twenty partners race for one customer")
def test_r5_twenty_partners_race_for_one_customer_one_wins(pg, tried):
    tried(20)
    db, service, admin = pg
    members = [f"URACE{i:02d}" for i in range(20)]
    for i, member in enumerate(members):
        admin.add_partner(f"Partner {i}", "DE", [member], contact_email="desk@example.com")
    results = _race(
        [lambda m=m: service.preregister(m, form(email="contested@customer.de")) for m in members]
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(e, Refused) for e in losers), losers
    assert {e.code for e in losers} == {"preregistered_by_another_partner"}
    with db.session() as s:
        live = s.scalar(
            select(func.count())
            .select_from(Preregistration)
            .where(Preregistration.email_norm == "contested@customer.de")
        )
    assert live == 1


@pytest.mark.reliability("load", "twenty threads push a partner to the cap")
def test_r4_twenty_threads_push_a_partner_from_95_to_the_cap(pg, tried):
    tried(20)
    db, service, admin = pg
    admin.add_partner("Busy", "DE", ["UBUSY1"], contact_email="desk@example.com")
    for i in range(95):
        service.preregister("UBUSY1", form(email=f"old{i}@customer.de"))
    results = _race(
        [
            lambda i=i: service.preregister("UBUSY1", form(email=f"new{i}@customer.de"))
            for i in range(20)
        ]
    )
    refused = [r for r in results if isinstance(r, Refused)]
    assert len(refused) == 15
    assert {r.code for r in refused} == {"quota_full"}
    with db.session() as s:
        live = s.scalar(
            select(func.count())
            .select_from(Preregistration)
            .where(Preregistration.status.in_(("preregistered", "under_review")))
        )
    assert live == 100
