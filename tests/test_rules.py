"""One or more tests per source rule (docs/source-rules.md), driving the service and
checking both the outcome and what was stored."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from bot.errors import InvalidInput, Refused
from bot.rules import RuleSettings
from bot.service import PreregistrationService
from store.models import AuditEvent, Delivery, Preregistration
from tests.conftest import T0
from tests.helpers import add_partner, directory_row, form, load_directory

ACME = "UACME1"
BETA = "UBETA1"
MANAGER = "UMGR1"


@pytest.fixture
def partners(admin):
    add_partner(admin, "Acme", ACME)
    add_partner(admin, "Beta", BETA)
    admin.add_manager(MANAGER, "eco@vendor.example")


def rows(db) -> list[Preregistration]:
    with db.session() as s:
        return list(s.scalars(select(Preregistration).order_by(Preregistration.id)))


def deliveries(db) -> list[tuple[str, str]]:
    with db.session() as s:
        return [(d.kind, d.dedupe_key) for d in s.scalars(select(Delivery).order_by(Delivery.id))]


# --- R1 ------------------------------------------------------------------------------------


def test_r1_partner_without_reserved_contact_cannot_preregister(admin, service, db):
    add_partner(admin, "NoContact", "UNOC1", contact_email=None)
    with pytest.raises(Refused) as err:
        service.preregister("UNOC1", form())
    assert err.value.code == "no_reserved_contact"
    assert err.value.rule == "R1"
    assert "reserved contact" in err.value.message
    assert rows(db) == []


def test_r1_reserved_mobile_is_enough(admin, service):
    admin.add_partner("MobileOnly", "DE", ["UMOB1"], contact_mobile="+49 1512 0000001")
    assert service.ready_partner("UMOB1").name == "MobileOnly"
    assert service.preregister("UMOB1", form()).preregistration.status == "preregistered"


def test_r1_ready_partner_refuses_before_any_form(admin, service):
    add_partner(admin, "NoContact", "UNOC1", contact_email=None)
    with pytest.raises(Refused) as err:
        service.ready_partner("UNOC1")
    assert err.value.code == "no_reserved_contact"


def test_unknown_member_is_told_to_ask_for_setup(service, partners, db):
    with pytest.raises(Refused) as err:
        service.preregister("USTRANGER", form())
    assert err.value.code == "not_a_member"
    assert rows(db) == []


# --- R2: the seven causes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "code", "words"),
    [
        pytest.param(
            {"china_mainland": True}, "china_mainland", "China-mainland", id="R2-china-mainland"
        ),
        pytest.param({"consumer": True}, "consumer_cloud_user", "consumer-cloud", id="R2-consumer"),
        pytest.param({"contract": True}, "signed_contract", "signed contracts", id="R2-contract"),
        pytest.param({"cash_spend": True}, "cash_expenditure", "cash-expenditure", id="R2-cash"),
        pytest.param(
            {"enterprise_master": True}, "enterprise_master", "enterprise master", id="R2-master"
        ),
        pytest.param(
            {"associated_partner": "Some Other Partner"},
            "associated_with_another_partner",
            "associated with another partner",
            id="R2-associated",
        ),
    ],
)
def test_r2_directory_causes_refuse_and_name_the_cause(
    service, partners, db, clock, flags, code, words
):
    load_directory(db, clock.now(), directory_row("ceo@customer.de", **flags))
    with pytest.raises(Refused) as err:
        service.preregister(ACME, form())
    assert err.value.code == code
    assert err.value.rule == "R2"
    assert words in err.value.message
    assert rows(db) == []


def test_r2_china_mainland(service, partners, db, clock):
    load_directory(db, clock.now(), directory_row("ceo@customer.de", china_mainland=True))
    with pytest.raises(Refused, match="China-mainland website"):
        service.preregister(ACME, form())


def test_r2_associated_with_another_partner(service, partners, db, clock):
    load_directory(db, clock.now(), directory_row("ceo@customer.de", associated_partner="Beta"))
    with pytest.raises(Refused, match="associated with another partner"):
        service.preregister(ACME, form())
    with pytest.raises(Refused, match="already associated with your company"):
        service.preregister(BETA, form())


def test_r2_preregistered_by_another_partner(service, partners, db):
    service.preregister(BETA, form())
    with pytest.raises(Refused) as err:
        service.preregister(ACME, form(email="CEO@Customer.de"))
    assert err.value.code == "preregistered_by_another_partner"
    assert "preregistered by another partner" in err.value.message
    assert [(r.partner_id, r.status) for r in rows(db)] == [(2, "preregistered")]


def test_r2_consumer_cloud_user(service, partners, db, clock):
    load_directory(db, clock.now(), directory_row("ceo@customer.de", consumer=True))
    with pytest.raises(Refused, match="consumer-cloud user"):
        service.preregister(ACME, form())


def test_r2_signed_contract(service, partners, db, clock):
    load_directory(db, clock.now(), directory_row("ceo@customer.de", contract=True))
    with pytest.raises(Refused, match="signed contracts with the vendor"):
        service.preregister(ACME, form())


def test_r2_cash_expenditure_without_direct_sales(service, partners, db, clock):
    load_directory(db, clock.now(), directory_row("ceo@customer.de", cash_spend=True))
    with pytest.raises(Refused, match="cash-expenditure records"):
        service.preregister(ACME, form())


def test_r2_cash_expenditure_preregistered_by_direct_sales_is_allowed(service, partners, db, clock):
    load_directory(
        db,
        clock.now(),
        directory_row("ceo@customer.de", cash_spend=True, direct_sales_preregistered=True),
    )
    assert service.preregister(ACME, form()).preregistration.status == "preregistered"


def test_r2_enterprise_master(service, partners, db, clock):
    load_directory(db, clock.now(), directory_row("ceo@customer.de", enterprise_master=True))
    with pytest.raises(Refused, match="enterprise master in the unified accounting model"):
        service.preregister(ACME, form())


def test_r2_refusal_is_audited_with_its_cause(service, partners, db, clock):
    load_directory(db, clock.now(), directory_row("ceo@customer.de", consumer=True))
    with pytest.raises(Refused):
        service.preregister(ACME, form())
    with db.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.actor == ACME)).one()
    assert event.result == "refused:consumer_cloud_user"
    assert event.preregistration_id is None


# --- R3 ------------------------------------------------------------------------------------


def test_r3_directory_country_differs_goes_to_review(service, partners, db, clock):
    load_directory(db, clock.now(), directory_row("ceo@customer.de", country="FR"))
    result = service.preregister(ACME, form())
    p = result.preregistration
    assert p.status == "under_review"
    assert p.customer_country == "FR"
    assert "FR" in p.review_reason and "DE" in p.review_reason
    assert p.expires_at is None
    assert p.review_due_at == T0 + timedelta(days=2)  # Monday -> Wednesday
    assert ("review_request", f"review_request:{p.id}") in deliveries(db)


def test_r3_mobile_region_decides_when_email_unknown(service, partners, db):
    p = service.preregister(ACME, form(mobile="+33 6 12 34 56 78")).preregistration
    assert p.status == "under_review"
    assert p.customer_country == "FR"


def test_r3_same_country_is_decided_at_once(service, partners):
    p = service.preregister(ACME, form()).preregistration
    assert p.status == "preregistered"
    assert p.customer_country == "DE"


def test_r3_review_due_skips_the_weekend(service, partners, clock):
    clock.set(T0 + timedelta(days=4))  # Friday 10:00
    p = service.preregister(ACME, form(mobile="+33 6 12 34 56 78")).preregistration
    assert p.review_due_at == T0 + timedelta(days=8)  # next Tuesday 10:00


def test_r3_review_due_skips_configured_holidays(db, clock, partners):
    tuesday = date(2026, 11, 24)
    service = PreregistrationService(db, clock, RuleSettings(holidays=frozenset({tuesday})))
    p = service.preregister(ACME, form(mobile="+33 6 12 34 56 78")).preregistration
    assert p.review_due_at == T0 + timedelta(days=3)  # Thursday


def test_r3_approve_starts_the_15_days(service, partners, clock, db):
    p = service.preregister(ACME, form(mobile="+33 6 12 34 56 78", send=True)).preregistration
    clock.advance(timedelta(hours=5))
    approved = service.approve(MANAGER, p.id)
    assert approved.status == "preregistered"
    assert approved.decided_by == MANAGER
    assert approved.expires_at == clock.now() + timedelta(days=15)
    kinds = [k for k, _ in deliveries(db)]
    assert kinds == ["review_request", "review_decided", "invitation_email"]


def test_r3_reject_needs_a_reason_and_frees_the_customer(service, partners, clock):
    p = service.preregister(ACME, form(mobile="+33 6 12 34 56 78")).preregistration
    with pytest.raises(InvalidInput):
        service.reject(MANAGER, p.id, "   ")
    rejected = service.reject(MANAGER, p.id, "Customer is served by direct sales")
    assert rejected.status == "rejected"
    assert rejected.decision_reason == "Customer is served by direct sales"
    assert service.preregister(BETA, form(mobile="+33 6 12 34 56 78")).created


def test_r3_only_managers_decide_and_only_once(service, partners):
    p = service.preregister(ACME, form(mobile="+33 6 12 34 56 78")).preregistration
    with pytest.raises(Refused) as err:
        service.approve(ACME, p.id)
    assert err.value.code == "not_a_manager"
    service.approve(MANAGER, p.id)
    with pytest.raises(Refused) as again:
        service.reject(MANAGER, p.id, "late")
    assert again.value.code == "already_decided"


# --- R4 ------------------------------------------------------------------------------------


def test_r4_at_most_100_live_customers(db, clock, partners):
    service = PreregistrationService(db, clock, RuleSettings())
    for i in range(100):
        mobile = "+49 1512 3456789" if i % 2 else "+33 6 12 34 56 78"  # mix of both statuses
        service.preregister(ACME, form(email=f"c{i}@customer.de", mobile=mobile))
    with pytest.raises(Refused) as err:
        service.preregister(ACME, form(email="c100@customer.de"))
    assert err.value.code == "quota_full"
    assert err.value.rule == "R4"
    assert "100" in err.value.message
    assert len(rows(db)) == 100
    # Associated customers no longer count: the cap frees up.
    first = rows(db)[1]
    service.associate(first.id, first.email)
    assert service.preregister(ACME, form(email="c100@customer.de")).created


@pytest.mark.reliability("fault", "R4: 100 lapsed claims, sweep not run, partner claims again")
def test_r4_lapsed_claims_do_not_count_before_the_sweep(service, partners, clock, db, tried):
    for i in range(100):
        service.preregister(ACME, form(email=f"c{i}@customer.de"))
    clock.advance(timedelta(days=15, seconds=1))  # every claim lapsed; the sweep has not run
    tried(101)
    assert service.check(ACME, "c100@customer.de").allowed
    assert service.summary(ACME).quota_used == 0
    assert service.preregister(ACME, form(email="c100@customer.de")).created
    # the other partner's view of the same lapsed customers agrees: they are free
    assert service.preregister(BETA, form(email="c0@customer.de")).created


# --- R5 ------------------------------------------------------------------------------------


def test_r5_valid_for_15_days_then_free_for_anyone(service, partners, clock, db):
    p = service.preregister(ACME, form()).preregistration
    assert p.expires_at == T0 + timedelta(days=15)
    clock.advance(timedelta(days=14, hours=23))
    with pytest.raises(Refused):
        service.preregister(BETA, form())
    clock.advance(timedelta(hours=1))
    expired = service.expire_due()
    assert [e.id for e in expired] == [p.id]
    assert ("expired", f"expired:{p.id}") in deliveries(db)
    assert service.preregister(BETA, form()).preregistration.status == "preregistered"


def test_r5_same_partner_can_claim_again_after_expiry(service, partners, clock):
    service.preregister(ACME, form())
    with pytest.raises(Refused) as err:
        service.preregister(ACME, form())
    assert err.value.code == "already_preregistered"
    clock.advance(timedelta(days=15))
    service.expire_due()
    assert service.preregister(ACME, form()).created


def test_r5_lapsed_claim_does_not_block_before_the_sweep(service, partners, clock, db):
    first = service.preregister(ACME, form()).preregistration
    clock.advance(timedelta(days=15, seconds=1))
    second = service.preregister(BETA, form()).preregistration
    assert second.partner_name == "Beta"
    statuses = {r.id: r.status for r in rows(db)}
    assert statuses == {first.id: "expired", second.id: "preregistered"}


def test_r5_expire_sweep_is_idempotent(service, partners, clock):
    service.preregister(ACME, form())
    clock.advance(timedelta(days=16))
    assert len(service.expire_due()) == 1
    assert service.expire_due() == []


# --- R6 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    ["ceo+tag@customer.de", "ceo@cust omer.de", "ceö@customer.de", "ceo@@customer.de", "", "ceo"],
)
def test_r6_email_with_bad_characters_is_refused(service, partners, db, email):
    with pytest.raises(InvalidInput) as err:
        service.preregister(ACME, form(email=email))
    assert "email" in err.value.errors
    assert rows(db) == []


def test_r6_accepts_letters_digits_underscore_dash_dot(service, partners):
    p = service.preregister(ACME, form(email="Jane_Doe-1.x@sub-domain.customer.de")).preregistration
    assert p.email == "Jane_Doe-1.x@sub-domain.customer.de"


def test_r6_invitation_with_different_address_fails(service, partners, db):
    p = service.preregister(ACME, form()).preregistration
    with pytest.raises(Refused) as err:
        service.associate(p.id, "someone.else@customer.de")
    assert err.value.code == "email_mismatch"
    assert err.value.rule == "R6"
    assert rows(db)[0].status == "preregistered"


# --- R7 ------------------------------------------------------------------------------------


def test_r7_form_fields_are_stored_and_type_is_reseller(service, partners, db):
    service.preregister(ACME, form(name="  Clara   Customer ", mobile="01512 3456789", send=False))
    row = rows(db)[0]
    assert (row.full_name, row.email, row.mobile) == (
        "Clara Customer",
        "ceo@customer.de",
        "+4915123456789",
    )
    assert row.send_invitation is False
    assert row.association_type == "reseller"
    assert row.submitted_by == ACME


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("full_name", {"name": ""}),
        ("full_name", {"name": "x" * 101}),
        ("full_name", {"name": "evil\u202ename"}),
        ("mobile", {"mobile": ""}),
        ("mobile", {"mobile": "12"}),
        ("mobile", {"mobile": "not a number"}),
    ],
)
def test_r7_bad_fields_are_named_and_nothing_is_written(service, partners, db, field, kwargs):
    with pytest.raises(InvalidInput) as err:
        service.preregister(ACME, form(**kwargs))
    assert field in err.value.errors
    assert rows(db) == []


def test_r7_all_field_errors_are_reported_together(service, partners):
    with pytest.raises(InvalidInput) as err:
        service.preregister(ACME, form(name="", email="a b", mobile=""))
    assert set(err.value.errors) == {"full_name", "email", "mobile"}


# --- R8 ------------------------------------------------------------------------------------


def test_r8_yes_queues_the_invitation_email_no_queues_the_link(service, partners, db):
    yes = service.preregister(ACME, form(email="yes@customer.de", send=True)).preregistration
    no = service.preregister(ACME, form(email="no@customer.de", send=False)).preregistration
    assert deliveries(db) == [
        ("invitation_email", f"invitation_email:{yes.id}"),
        ("invitation_share", f"invitation_share:{no.id}"),
    ]
    service.request_invitation_email(ACME, no.id)
    service.request_invitation_email(ACME, no.id)  # asking twice sends once
    assert ("invitation_email", f"invitation_email:{no.id}") in deliveries(db)
    assert len(deliveries(db)) == 3


# --- R9 ------------------------------------------------------------------------------------


def test_r9_delete_one_frees_the_customer_at_once(service, partners, db):
    p = service.preregister(ACME, form()).preregistration
    [result] = service.delete(ACME, ["CEO@customer.de"])
    assert result.deleted
    assert rows(db)[0].status == "deleted"
    assert rows(db)[0].deleted_by == ACME
    assert service.preregister(BETA, form()).created
    assert p.id == result.preregistration_id


def test_r9_delete_several_refuses_under_review_and_associated(service, partners, db):
    ok = service.preregister(ACME, form(email="ok@customer.de")).preregistration
    review = service.preregister(
        ACME, form(email="review@customer.de", mobile="+33 6 12 34 56 78")
    ).preregistration
    assoc = service.preregister(ACME, form(email="assoc@customer.de")).preregistration
    service.associate(assoc.id, "assoc@customer.de")
    results = service.delete(ACME, [ok.id, review.id, assoc.id])
    assert [r.deleted for r in results] == [True, False, False]
    assert "Under review" in results[1].message
    assert "Associated" in results[2].message
    assert {r.email: r.status for r in rows(db)} == {
        "ok@customer.de": "deleted",
        "review@customer.de": "under_review",
        "assoc@customer.de": "associated",
    }


def test_r9_partner_cannot_delete_another_partners_customer(service, partners, db):
    theirs = service.preregister(BETA, form()).preregistration
    [by_id] = service.delete(ACME, [theirs.id])
    [by_email] = service.delete(ACME, ["ceo@customer.de"])
    assert not by_id.deleted and not by_email.deleted
    assert rows(db)[0].status == "preregistered"


# --- R12 -----------------------------------------------------------------------------------


def test_r12_matching_email_associates_case_insensitively(service, partners, db, clock):
    p = service.preregister(ACME, form()).preregistration
    clock.advance(timedelta(days=3))
    done = service.associate(p.id, "  CEO@Customer.DE ")
    assert done.status == "associated"
    assert done.associated_at == clock.now()
    assert ("associated", f"associated:{p.id}") in deliveries(db)
    with pytest.raises(Refused) as again:
        service.associate(p.id, "ceo@customer.de")
    assert again.value.code == "already_associated"


def test_r12_expired_invitation_cannot_associate(service, partners, clock, db):
    p = service.preregister(ACME, form()).preregistration
    clock.advance(timedelta(days=15))
    with pytest.raises(Refused) as err:
        service.associate(p.id, "ceo@customer.de")
    assert err.value.code == "invitation_expired"
    assert rows(db)[0].status == "expired"


def test_r12_under_review_cannot_associate(service, partners):
    p = service.preregister(ACME, form(mobile="+33 6 12 34 56 78")).preregistration
    with pytest.raises(Refused):
        service.associate(p.id, "ceo@customer.de")


# --- idempotency and audit ------------------------------------------------------------------


def test_same_request_key_creates_once(service, partners, db):
    first = service.preregister(ACME, form(), request_key="V123")
    again = service.preregister(ACME, form(), request_key="V123")
    assert first.created and not again.created
    assert again.preregistration.id == first.preregistration.id
    assert len(rows(db)) == 1


def test_every_state_change_is_audited(service, partners, clock, db):
    p = service.preregister(ACME, form(mobile="+33 6 12 34 56 78")).preregistration
    service.approve(MANAGER, p.id)
    service.associate(p.id, "ceo@customer.de")
    with db.session() as s:
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.preregistration_id == p.id).order_by(AuditEvent.id)
        ).all()
        assert [(e.action, e.result) for e in events] == [
            ("preregister", "under_review"),
            ("approve", "preregistered"),
            ("associate", "associated"),
        ]
        assert s.scalar(select(func.count()).select_from(AuditEvent)) >= 3


def test_check_answers_without_claiming(service, partners, db, clock):
    load_directory(db, clock.now(), directory_row("fr@customer.fr", country="FR"))
    assert service.check(ACME, "new@customer.de").allowed
    review = service.check(ACME, "fr@customer.fr")
    assert review.allowed and review.needs_review
    service.preregister(BETA, form())
    taken = service.check(ACME, "ceo@customer.de")
    assert not taken.allowed and taken.code == "preregistered_by_another_partner"
    assert len(rows(db)) == 1


def test_r9_delete_target_that_is_not_an_email_changes_nothing(service, partners, db):
    service.preregister(ACME, form())
    [result] = service.delete(ACME, ["ceo@customer.de\x00<!channel>"])
    assert not result.deleted
    assert "No customer" in result.message
    assert "\x00" not in result.email
    assert rows(db)[0].status == "preregistered"


def test_r3_reject_reason_with_control_characters_is_refused(service, partners, db):
    p = service.preregister(ACME, form(mobile="+33 6 12 34 56 78")).preregistration
    with pytest.raises(InvalidInput) as err:
        service.reject(MANAGER, p.id, "bad\x00reason")
    assert "control" in err.value.errors["reason"]
    assert rows(db)[0].status == "under_review"
