"""The member's reads that answer in one statement (docs/performance.md, eighth session):
`/preregister check` and the list page find the member's partner inside the same statement
as the answer. Each decision is checked against what the rules say, on both backends, for a
named member, anyone of a workspace linked with "everyone may preregister", and a stranger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, update

from bot.errors import Refused
from bot.rules import RuleSettings
from bot.service import PreregistrationService
from store.models import Partner, PartnerMember, Preregistration, Workspace
from tests.conftest import T0
from tests.helpers import add_partner, directory_row, form, load_directory

ACME = "UACME1"
BETA = "UBETA1"
ORG_USER = "TORG1:UANYONE"  # anyone of workspace TORG1, linked to Acme for everyone


@pytest.fixture
def partners(admin, db):
    acme = add_partner(admin, "Acme", ACME)
    add_partner(admin, "Beta", BETA)
    with db.session() as s:
        s.execute(
            insert(Workspace).values(
                install_key="-:TORG1",
                org_id="TORG1",
                team_id="TORG1",
                partner_id=acme,
                everyone_may_preregister=True,
                status="installed",
                installed_at=T0,
            )
        )
    return acme


@pytest.mark.parametrize("member", [ACME, ORG_USER])
def test_check_decides_as_the_rules_say(service, partners, db, clock, member):
    load_directory(
        db,
        clock.now(),
        directory_row("fr@customer.fr", country="FR"),
        directory_row("cn@customer.cn", country="CN", china_mainland="true"),
    )
    assert service.check(member, "new@customer.de").allowed
    review = service.check(member, "fr@customer.fr")
    assert review.allowed and review.needs_review
    assert (review.customer_country, review.partner_country) == ("FR", "DE")
    assert service.check(member, "cn@customer.cn").code == "china_mainland"
    service.preregister(BETA, form("beta@customer.de"))
    assert service.check(member, "beta@customer.de").code == "preregistered_by_another_partner"
    own = service.preregister(ACME, form("own@customer.de")).preregistration
    taken = service.check(member, "own@customer.de")
    assert not taken.allowed and "already preregistered by your company" in taken.message
    with db.session() as s:  # its validity ended; the sweep has not expired it yet
        s.execute(
            update(Preregistration)
            .where(Preregistration.id == own.id)
            .values(expires_at=clock.now() - timedelta(minutes=1))
        )
    assert service.check(member, "own@customer.de").allowed


def test_check_refuses_over_quota_a_stranger_and_an_inactive_partner(db, clock, partners):
    service = PreregistrationService(db, clock, RuleSettings(quota_limit=1))
    assert service.check(ORG_USER, "one@customer.de").allowed
    service.preregister(ACME, form("one@customer.de"))
    assert service.check(ORG_USER, "two@customer.de").code == "quota_full"
    assert service.check(BETA, "two@customer.de").allowed  # another partner's quota
    for stranger in ("USTRANGER", "TOTHER:UANYONE"):
        with pytest.raises(Refused) as err:
            service.check(stranger, "two@customer.de")
        assert err.value.code == "not_a_member"
    with db.session() as s:
        s.execute(update(Partner).where(Partner.name == "Beta").values(active=False))
    assert service.check(BETA, "two@customer.de").code == "partner_inactive"


def test_the_list_page_is_the_members_own_partners(service, partners, db):
    for n in range(3):
        service.preregister(ACME, form(f"a{n}@customer.de"))
    service.preregister(BETA, form("b@customer.de"))
    for member in (ACME, ORG_USER):
        page = service.list_customers(member, ("preregistered",), offset=0, limit=2)
        assert page.total == 3 and len(page.items) == 2
        assert {i.partner_name for i in page.items} == {"Acme"}
        assert [i.email for i in page.items] == ["a2@customer.de", "a1@customer.de"]
        assert page.items[0].partner_contact_email == "partner-desk@example.com"
        past = service.list_customers(member, ("preregistered",), offset=10, limit=2)
        assert (past.items, past.total) == ([], 3)
        assert service.list_customers(member, ("expired",)).total == 0
        assert service.list_customers(member, None).total == 3
    with pytest.raises(Refused) as err:
        service.list_customers("USTRANGER", None)
    assert err.value.code == "not_a_member"


def test_a_removed_member_no_longer_sees_the_list(service, partners, db):
    service.preregister(ACME, form())
    assert service.list_customers(ACME, None).total == 1
    with db.session() as s:
        s.query(PartnerMember).filter_by(slack_user_id=ACME).delete()
        s.execute(update(Workspace).values(everyone_may_preregister=False))
    for member in (ACME, ORG_USER):
        with pytest.raises(Refused):
            service.list_customers(member, None)
        with pytest.raises(Refused):
            service.check(member, "x@customer.de")
