"""The submission's combined reads (store/preregistrations.py, docs/performance.md, eighth
session) answer exactly what the separate look-ups answer, on both backends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from store import audit, deliveries
from store import directory as directory_store
from store import partners as partner_store
from store import preregistrations as prereg_store
from store.models import Preregistration
from tests.helpers import directory_row, form, load_directory


def _separately(s, key, email_norm, partner_id, valid_at):  # type: ignore[no-untyped-def]
    replay = prereg_store.by_request_key(s, key)
    live = prereg_store.live_for_email(s, email_norm)
    account = directory_store.account(s, email_norm)
    return (
        None if replay is None else replay.id,
        prereg_store.count_in_quota(s, partner_id, valid_at),
        None if live is None else (live.id, live.status, live.partner_id, live.expires_at),
        None
        if account is None
        else tuple(getattr(account, f) for f in prereg_store.DirectoryFacts._fields),
    )


def _together(s, key, email_norm, partner_id, valid_at):  # type: ignore[no-untyped-def]
    reads = prereg_store.claim_reads(
        s.connection(), key=key, email_norm=email_norm, partner_id=partner_id, valid_at=valid_at
    )
    return (
        reads.replay_id,
        reads.in_quota,
        None if reads.live is None else tuple(reads.live),
        None if reads.account is None else tuple(reads.account),
    )


def test_claim_reads_answer_as_the_separate_look_ups(db, admin, service, clock):
    acme = admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    other = admin.add_partner("Other", "DE", ["UOTHER1"], contact_email="desk@other.example")
    load_directory(
        db,
        clock.now(),
        directory_row("known@customer.de", "DE", cash_spend=True, direct_sales_preregistered=True),
        directory_row("held@customer.de", "FR"),
        directory_row("flagged@customer.de", "DE", associated_partner="Other", consumer=True),
    )
    mine = service.preregister("UACME1", form(email="mine@customer.de"), request_key="V1")
    lapsed = service.preregister("UACME1", form(email="lapsed@customer.de"), request_key="V2")
    service.preregister("UACME1", form(email="held@customer.de"), request_key="V3")  # review
    service.preregister("UOTHER1", form(email="theirs@customer.de"), request_key="V4")
    with db.session() as s:
        s.execute(
            update(Preregistration)
            .where(Preregistration.id == lapsed.preregistration.id)
            .values(expires_at=clock.now() - timedelta(seconds=1))
        )
    later = clock.now() + timedelta(days=20)
    cases = [
        ("V1", "mine@customer.de", acme, clock.now()),
        ("V9", "lapsed@customer.de", acme, clock.now()),
        (None, "known@customer.de", acme, clock.now()),
        ("V4", "held@customer.de", other, clock.now()),
        ("V3", "theirs@customer.de", acme, later),
        (None, "nobody@customer.de", other, later),
        ("V1", "flagged@customer.de", other, later),
    ]
    with db.session() as s:
        answers = [_together(s, *case) for case in cases]
        assert answers == [_separately(s, *case) for case in cases]
    assert answers[0][0] == mine.preregistration.id
    assert answers[1][1:3] == (
        2,
        (lapsed.preregistration.id, "preregistered", acme, answers[1][2][3]),
    )
    assert answers[2][3] is not None and answers[2][2] is None
    assert answers[5] == (None, 0, None, None)


def test_submitter_reads_the_request_and_the_members_partner(db, admin, service):
    acme = admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    gone = admin.add_partner("Gone", "FR", ["UGONE1"], contact_mobile="+33 6 12 34 56 78")
    with db.session() as s:
        partner_store.set_active(s, gone, False)
    made = service.preregister("UACME1", form(), request_key="V1")
    with db.session() as s:
        conn = s.connection()
        first = prereg_store.submitter(conn, "UACME1", None, "V1")
        assert first.replay_id == made.preregistration.id
        assert first.partner is not None and first.partner[0] == acme
        assert first.partner[-1] is True
        inactive = prereg_store.submitter(conn, "UGONE1", None, None)
        assert inactive.replay_id is None
        assert inactive.partner is not None
        assert (inactive.partner[0], inactive.partner[2], inactive.partner[-1]) == (
            gone,
            "FR",
            False,
        )
        stranger = prereg_store.submitter(conn, "USTRANGER", "TNOBODY", "V1")
        assert (stranger.replay_id, stranger.partner) == (made.preregistration.id, None)


def test_insert_claim_writes_the_row_its_audit_event_and_its_notice(db, admin, service, clock):
    """One statement on PostgreSQL, three on SQLite: the same rows either way."""
    admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    shared = service.preregister("UACME1", form(send=False), request_key="V1").preregistration
    review = service.preregister("UACME1", form(email="fr@customer.fr", mobile="+33 6 12 34 56 78"))
    with db.session() as s:
        row = prereg_store.get(s, shared.id)
        assert (row.status, row.request_key, row.email_domain) == (
            "preregistered",
            "V1",
            "customer.de",
        )
        assert row.expires_at == shared.expires_at == clock.now() + timedelta(days=15)
        for pid, status, kind, country in (
            (shared.id, "preregistered", "invitation_share", "DE"),
            (review.preregistration.id, "under_review", "review_request", "FR"),
        ):
            [event] = audit.events_for(s, pid)
            assert (event.actor, event.action, event.result, event.partner_id, event.detail) == (
                "UACME1",
                "preregister",
                status,
                row.partner_id,
                {"country": country},
            )
            assert event.at == clock.now()
            [notice] = deliveries.for_preregistration(s, pid)
            assert (notice.kind, notice.dedupe_key, notice.payload) == (
                kind,
                f"{kind}:{pid}",
                {"preregistration_id": pid},
            )
            assert (notice.status, notice.attempts, notice.claimed_until) == ("pending", 0, None)
            assert notice.next_attempt_at == notice.created_at == clock.now()
