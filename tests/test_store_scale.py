"""The store's look-ups changed for a million rows (docs/performance.md, seventh session): same
answers as before, on both backends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.desk import Desk
from store import partners as partner_store
from store import preregistrations as prereg_store
from store.models import Partner
from tests.conftest import T0
from tests.helpers import form


def test_lock_active_partner_bumps_the_lock_and_reads_active(db, admin):
    active = admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    gone = admin.add_partner("Gone", "DE", ["UGONE1"], contact_email="desk@gone.example")
    with db.session() as s:
        partner_store.set_active(s, gone, False)
    with db.session() as s:
        assert partner_store.lock_active_partner(s, active) is True
        assert partner_store.lock_active_partner(s, gone) is False
    with db.session() as s:
        versions = {pid: v for pid, v in s.execute(select(Partner.id, Partner.lock_version))}
    assert versions == {active: 1, gone: 1}


def test_request_key_and_live_email_find_the_row_or_none(db, admin, service, clock):
    admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    made = service.preregister("UACME1", form(email="Live@Customer.de"), request_key="V1")
    with db.session() as s:
        assert prereg_store.by_request_key(s, "V1").id == made.preregistration.id
        assert prereg_store.by_request_key(s, "V2") is None
        assert prereg_store.live_for_email(s, "live@customer.de").id == made.preregistration.id
        assert prereg_store.live_for_email(s, "other@customer.de") is None
    service.delete("UACME1", [made.preregistration.id])
    with db.session() as s:
        assert prereg_store.live_for_email(s, "live@customer.de") is None


def test_program_counts_and_last_activity_of_a_partner_on_a_later_page(db, admin, service):
    admin.add_partner("Busy", "DE", ["UBUSY1"], contact_email="desk@busy.example")
    admin.add_partner("Quiet", "DE", ["UQUIET1"], contact_email="desk@quiet.example")
    for i in range(3):
        service.preregister("UBUSY1", form(email=f"b{i}@customer.de"))
    one = service.preregister("UQUIET1", form(email="q@customer.de")).preregistration
    service.delete("UQUIET1", [one.id])
    desk = Desk(service)
    first, total = desk.program("quota", 0, 1)
    second, _ = desk.program("quota", 1, 1)
    assert total == 2
    assert (first[0].name, first[0].quota_used, first[0].counts) == (
        "Busy",
        3,
        {"preregistered": 3},
    )
    quiet = second[0]
    assert (quiet.name, quiet.quota_used, quiet.counts) == ("Quiet", 0, {"deleted": 1})
    assert quiet.last_activity == T0
    by_name, _ = desk.program("name", 0, 5)
    assert [r.name for r in by_name] == ["Busy", "Quiet"]


def test_retention_erases_the_longest_ended_first(db, admin, service, clock):
    admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    ids = [
        service.preregister("UACME1", form(email=f"r{i}@customer.de")).preregistration.id
        for i in range(3)
    ]
    with db.session() as s:
        for n, pid in enumerate(ids):  # the last one ended first
            prereg_store.transition(
                s, pid, ("preregistered",), status="deleted", deleted_at=T0 - timedelta(days=n)
            )
    from store.privacy import ended_before_ids

    with db.session() as s:
        assert ended_before_ids(s, T0 + timedelta(days=1), 2) == [ids[2], ids[1]]
        assert ended_before_ids(s, T0 - timedelta(days=1), 5) == [ids[2]]


def test_program_sorts_by_quota_less_the_lapsed_claims_the_sweep_has_not_expired(
    db, admin, service, clock
):
    admin.add_partner("Early", "DE", ["UEARLY1"], contact_email="desk@early.example")
    admin.add_partner("Late", "DE", ["ULATE1"], contact_email="desk@late.example")
    for i in range(3):
        service.preregister("UEARLY1", form(email=f"e{i}@customer.de"))
    clock.advance(timedelta(days=10))
    for i in range(2):
        service.preregister("ULATE1", form(email=f"l{i}@customer.de"))
    clock.advance(timedelta(days=6))  # Early's three have lapsed; no sweep has run
    rows, _ = Desk(service).program("quota", 0, 5)
    assert [(r.name, r.quota_used, r.counts) for r in rows] == [
        ("Late", 2, {"preregistered": 2}),
        ("Early", 0, {"preregistered": 3}),
    ]
