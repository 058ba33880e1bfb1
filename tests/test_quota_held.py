"""partners.quota_held (migration 0010): the triggers keep it equal to the partner's rows in
QUOTA_STATUSES through every way a row changes, on both backends, and the program overview's
pages by quota read it in the order the full count gives."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import delete, func, insert, select, update

from bot.desk import Desk
from bot.invitations import Invitations
from store.models import ALL_STATUSES, QUOTA_STATUSES, Partner, Preregistration
from tests.conftest import T0
from tests.helpers import form

MANAGER = "UMGRQ1"
ABROAD = "+33 6 12 34 56 78"


def _held(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return {name: held for name, held in s.execute(select(Partner.name, Partner.quota_held))}


def _counted(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """What the counter must say: the rows themselves, counted."""
    with db.session() as s:
        rows = s.execute(
            select(Partner.name, func.count(Preregistration.id))
            .outerjoin(
                Preregistration,
                (Preregistration.partner_id == Partner.id)
                & Preregistration.status.in_(QUOTA_STATUSES),
            )
            .group_by(Partner.name)
        )
        return {name: int(n) for name, n in rows}


def _agrees(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    held = _held(db)
    assert held == _counted(db)
    return held


def _row(partner_id: int, i: int, status: str) -> dict[str, object]:
    email = f"bulk{i}@customer{partner_id}.de"
    return {
        "partner_id": partner_id,
        "full_name": "Bulk",
        "email": email,
        "email_norm": email,
        "email_domain": f"customer{partner_id}.de",
        "mobile": "+4915100000000",
        "send_invitation": False,
        "association_type": "reseller",
        "status": status,
        "submitted_by": "U",
        "submitted_at": T0,
        "invite_failed_attempts": 0,
    }


def test_every_status_change_moves_the_counter_by_the_quota(db, admin):
    """Every (from, to) pair of statuses, as a conditional UPDATE (the rules' transitions), an
    ORM flush, a change of partner, a bulk INSERT and a bulk DELETE of several partners' rows."""
    a = admin.add_partner("A", "DE", ["UA1"], contact_email="desk@a.example")
    b = admin.add_partner("B", "DE", ["UB1"], contact_email="desk@b.example")
    pairs = list(itertools.product(ALL_STATUSES, ALL_STATUSES))
    with db.session() as s:  # one statement, several partners' rows
        s.execute(
            insert(Preregistration),
            [_row(a if i % 2 else b, i, old) for i, (old, _new) in enumerate(pairs)],
        )
    held = _agrees(db)
    assert held["A"] + held["B"] == sum(old in QUOTA_STATUSES for old, _new in pairs)
    with db.session() as s:
        ids = list(s.scalars(select(Preregistration.id).order_by(Preregistration.id)))
    for n, (pid, (_old, new)) in enumerate(zip(ids, pairs, strict=True)):
        with db.session() as s:
            if n % 2:
                s.execute(
                    update(Preregistration).where(Preregistration.id == pid).values(status=new)
                )
            else:
                s.get(Preregistration, pid).status = new
        _agrees(db)
    with db.session() as s:  # a row moved to the other partner, in and out of the quota
        s.execute(update(Preregistration).values(status="preregistered"))
        s.execute(update(Preregistration).where(Preregistration.id == ids[0]).values(partner_id=a))
        s.execute(
            update(Preregistration)
            .where(Preregistration.id == ids[1])
            .values(partner_id=b, status="expired")
        )
    assert _agrees(db) == {"A": 24, "B": 24}
    with db.session() as s:
        s.execute(delete(Preregistration).where(Preregistration.id.in_(ids[:10])))
    assert _agrees(db) == {"A": 19, "B": 20}
    with db.session() as s:
        s.execute(delete(Preregistration))
    assert _agrees(db) == {"A": 0, "B": 0}


def test_a_rolled_back_change_leaves_the_counter_as_it_was(db, admin):
    a = admin.add_partner("A", "DE", ["UA1"], contact_email="desk@a.example")
    with db.session() as s:
        s.execute(insert(Preregistration), [_row(a, 1, "preregistered")])
    try:
        with db.session() as s:
            s.execute(update(Preregistration).values(status="expired"))
            raise RuntimeError("abandoned")
    except RuntimeError:
        pass
    assert _agrees(db) == {"A": 1}


def test_the_counter_follows_the_rules_flows(db, admin, service, clock):
    """Claim, review, send back, resubmit, approve, reject, delete, association, decline,
    the sweep's expiry, an unanswered question's expiry and a deactivation."""
    admin.add_manager(MANAGER)
    a = admin.add_partner("A", "DE", ["UA1"], contact_email="desk@a.example")
    admin.add_partner("B", "DE", ["UB1"], contact_email="desk@b.example")
    desk = Desk(service)
    invitations = Invitations(service, "quota-test-secret-0123456789abcdef", None)

    def claim(user: str, email: str, mobile: str = "+49 1512 3456789") -> int:
        return service.preregister(user, form(email=email, mobile=mobile)).preregistration.id

    kept = claim("UA1", "kept@customer.de")
    gone = claim("UA1", "gone@customer.de")
    joined = claim("UA1", "joined@customer.de")
    declined = claim("UA1", "declined@customer.de")
    approved = claim("UA1", "approved@customer.fr", ABROAD)
    rejected = claim("UA1", "rejected@customer.fr", ABROAD)
    asked = claim("UB1", "asked@customer.fr", ABROAD)
    unanswered = claim("UB1", "unanswered@customer.fr", ABROAD)
    late = claim("UB1", "late@customer.de")
    assert _agrees(db) == {"A": 6, "B": 3}

    service.approve(MANAGER, approved)
    service.reject(MANAGER, rejected, "Not a customer of ours.")
    service.delete("UA1", [gone])
    service.associate(joined, "joined@customer.de")
    view = service.view(declined)
    assert view is not None
    invitations.decline(invitations.token_for(view))
    assert _agrees(db) == {"A": 2, "B": 3}

    desk.send_back(MANAGER, asked, "Which subsidiary?")
    desk.send_back(MANAGER, unanswered, "Which country?")
    assert _agrees(db) == {"A": 2, "B": 3}
    desk.resubmit("UB1", asked, form(email="asked@customer.fr", mobile=ABROAD), "Paris")
    assert _agrees(db) == {"A": 2, "B": 3}
    clock.advance(timedelta(days=30))
    assert desk.expire_unanswered() == 1
    assert {v.id for v in service.expire_due()} == {kept, approved, late}
    assert _agrees(db) == {"A": 0, "B": 1}  # asked, under review again
    claim("UA1", "again@customer.de")
    service.deactivate_partner(a)
    assert _agrees(db) == {"A": 0, "B": 1}


def test_program_by_quota_pages_like_the_full_count(db, admin, service, clock):
    """Partners with lapsed claims move down among the others, on every page."""
    sizes = {"P0": 4, "P1": 3, "P2": 3, "P3": 2, "P4": 1, "P5": 0}
    for name, n in sizes.items():
        admin.add_partner(name, "DE", [f"U{name}"], contact_email=f"desk@{name}.example")
        for i in range(n):
            service.preregister(f"U{name}", form(email=f"{name}{i}@customer.de"))
    clock.advance(timedelta(days=10))
    service.preregister("UP5", form(email="fresh@customer.de"))
    clock.advance(timedelta(days=6))  # all but P5's claim lapsed, no sweep
    service.preregister("UP4", form(email="p4late@customer.de"))
    service.preregister("UP3", form(email="p3late@customer.de"))
    desk = Desk(service)
    whole, total = desk.program("quota", 0, 10)
    assert total == 6
    expected = [("P3", 1), ("P4", 1), ("P5", 1), ("P0", 0), ("P1", 0), ("P2", 0)]
    assert [(r.name, r.quota_used) for r in whole] == expected
    paged = [r for page in range(3) for r in desk.program("quota", 2 * page, 2)[0]]
    assert [(r.name, r.quota_used) for r in paged] == expected
    by_name = [r for page in range(2) for r in desk.program("name", 3 * page, 3)[0]]
    assert [(r.name, r.quota_used) for r in by_name] == sorted(expected)
