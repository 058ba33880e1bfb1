"""The Approve click's visible answer (issue 15): the worker task that decides the click updates
the review post itself, the decision's notice held for it in the decision's transaction; the
rest (the submitter's DM) goes back to the outbox. What must hold whatever happens: one
decision, the post updated, the DM sent once, even when the deciding worker dies or Slack
fails or paces the update."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot import notices
from bot.outbox.delivery import LEASE, Deliverer, Job, SenderRegistry
from handlers import views
from store import deliveries as delivery_store
from tests.helpers import eventually
from tests.slackapp import MANAGER_CHANNEL
from tests.slackfixtures import MANAGER as DESK_MANAGER
from tests.slackfixtures import MEMBER
from tests.test_sweep_e2e import ACME, FR_MOBILE, MANAGER, World, iso, make_world

REVIEW_TS = "1700000000.000999"


@pytest.fixture
def world(app) -> Iterator[World]:  # type: ignore[no-untyped-def]
    """The app's database through a clock a week ahead: only explicit sweeps deliver what
    these tests record (the app's own worker finds nothing due)."""
    w = make_world(app.db_url)
    w.admin.add_partner("Acme", "DE", [ACME], contact_email="desk@acme.example")
    w.admin.add_manager(MANAGER)
    yield w
    w.db.dispose()


def under_review(app, world: World) -> int:  # type: ignore[no-untyped-def]
    """A request under review whose post is in the manager channel, nothing of it pending."""
    p = world.preregister(ACME, "ceo@customer.fr", mobile=FR_MOBILE)
    assert p.status == "under_review"
    world.service.set_review_message(p.id, MANAGER_CHANNEL, REVIEW_TS)
    app.sweep(at=iso(world.clock.now()))  # the review request's notice: already posted
    assert world.delivery(f"{notices.REVIEW_REQUEST}:{p.id}").status == "sent"
    return p.id


def dms_to(app, user: str) -> list[Any]:  # type: ignore[no-untyped-def]
    return [c for c in app.fake.calls_to("chat.postMessage") if c.args.get("channel") == user]


def test_the_task_that_decides_updates_the_post_and_the_outbox_sends_only_the_dm(app, direct):
    direct.partner()
    direct.manager()
    p = direct.prereg("client@customer.fr", mobile="+33 6 12 34 56 78")
    eventually(lambda: direct.service.view(p.id).review_message_ts, what="review post")
    ts = direct.service.view(p.id).review_message_ts

    app.block_action(
        DESK_MANAGER, views.APPROVE_ACTION, str(p.id), channel=MANAGER_CHANNEL, message_ts=ts
    )
    [update] = app.fake.wait_for("chat.update")
    assert update.args["ts"] == ts
    eventually(lambda: direct.status(p.id) == "preregistered", what="decision")
    with direct.db.session() as s:
        notice = eventually(
            lambda: (
                (d := delivery_store.by_key(s, notices.review_decided_key(p.id)))
                and d.status == "sent"
                and d
            ),
            what="decision notice sent",
        )
        assert notice.result["updated_at_decision"] == ts
        assert "updated" not in notice.result
    assert len(app.fake.calls_to("chat.update")) == 1


def test_a_worker_dying_between_decision_and_update_still_gets_the_post_updated_once(app, world):
    pid = under_review(app, world)
    decided, held = world.service.approve_holding_update(MANAGER, pid, "dead-worker", LEASE)
    assert held and decided.status == "preregistered"
    # ... and the worker that held the notice dies here: the outbox waits out its lease
    app.sweep(at=iso(world.clock.now() + LEASE / 2))
    assert app.fake.calls_to("chat.update") == []
    assert dms_to(app, ACME) == []

    app.sweep(at=iso(world.clock.now() + LEASE + timedelta(seconds=1)))
    [update] = app.fake.calls_to("chat.update")
    assert (update.args["channel"], update.args["ts"]) == (MANAGER_CHANNEL, REVIEW_TS)
    assert len(dms_to(app, ACME)) == 1
    app.sweep(at=iso(world.clock.now() + 3 * LEASE))
    assert len(app.fake.calls_to("chat.update")) == 1 and len(dms_to(app, ACME)) == 1


def test_the_decision_notice_is_not_held_while_an_earlier_notice_of_the_request_is_due(app, world):
    p = world.preregister(ACME, "ceo@customer.fr", mobile=FR_MOBILE)  # its post not yet sent
    _, held = world.service.approve_holding_update(MANAGER, p.id, "worker", LEASE)
    assert not held
    notice = world.delivery(notices.review_decided_key(p.id))
    assert notice.claim_token is None and notice.status == "pending"


def test_a_failed_update_at_decision_goes_back_whole_and_is_sent_once(app, direct):
    direct.partner()
    direct.manager()
    p = direct.prereg("client@customer.fr", mobile="+33 6 12 34 56 78")
    eventually(lambda: direct.service.view(p.id).review_message_ts, what="review post")
    ts = direct.service.view(p.id).review_message_ts
    app.fake.fail("chat.update", 500, times=3)  # the client's two retries included

    app.block_action(
        DESK_MANAGER, views.APPROVE_ACTION, str(p.id), channel=MANAGER_CHANNEL, message_ts=ts
    )
    with direct.db.session() as s:
        notice = eventually(
            lambda: (
                (d := delivery_store.by_key(s, notices.review_decided_key(p.id)))
                and d.status == "sent"
                and d
            ),
            timeout=15,
            what="decision notice sent",
        )
        assert notice.result["updated"] == ts  # by the outbox, after the failure at decision
    assert len(app.fake.calls_to("chat.update")) == 4
    eventually(lambda: dms_to(app, MEMBER), what="the submitter's DM")
    assert len(dms_to(app, MEMBER)) == 1


def test_a_wake_up_while_a_slow_send_is_in_flight_is_claimed_at_once(db, clock):
    """Before: a running delivery claimed again only once one of its sends finished, so an
    Approve click waited behind a slow email in flight (seconds)."""
    started, release, fast = threading.Event(), threading.Event(), threading.Event()

    def slow(job: Job) -> dict[str, Any]:
        started.set()
        release.wait(10)
        return {}

    def quick(job: Job) -> dict[str, Any]:
        fast.set()
        return {}

    registry = SenderRegistry()
    registry.register("slow", slow)
    registry.register(notices.DECISION_CLICK, quick)
    deliverer = Deliverer(db, clock, registry)
    now = clock.now()
    with db.session() as s:
        delivery_store.enqueue(s, kind="slow", dedupe_key="slow:1", payload={}, now=now)
    deliverer.start(idle_seconds=60)
    try:
        deliverer.kick()
        assert started.wait(5)
        with db.session() as s:
            delivery_store.enqueue(
                s, kind=notices.DECISION_CLICK, dedupe_key="click:1", payload={}, now=now
            )
        deliverer.kick()
        assert fast.wait(2), "the click waited for the slow send to finish"
    finally:
        release.set()
        deliverer.stop()


def posted_for_review(app, direct) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    direct.partner()
    direct.manager()
    p = direct.prereg("client@customer.fr", mobile="+33 6 12 34 56 78")
    eventually(lambda: direct.service.view(p.id).review_message_ts, what="review post")
    return p.id, str(direct.service.view(p.id).review_message_ts)


def decision_notice(direct, pid: int):  # type: ignore[no-untyped-def]
    with direct.db.session() as s:
        return eventually(
            lambda: (
                (d := delivery_store.by_key(s, notices.review_decided_key(pid)))
                and d.status == "sent"
                and d
            ),
            timeout=15,
            what="decision notice sent",
        )


def test_a_slack_retry_of_the_click_decides_nothing_and_says_nothing(app, direct):
    pid, ts = posted_for_review(app, direct)
    click = {"action_ts": "1700000100.000200"}
    for _ in range(2):  # the click, and Slack's retry of it
        app.block_action(
            DESK_MANAGER,
            views.APPROVE_ACTION,
            str(pid),
            channel=MANAGER_CHANNEL,
            message_ts=ts,
            extra_action=click,
        )
    decision_notice(direct, pid)
    eventually(lambda: dms_to(app, MEMBER), what="the submitter's DM")
    assert len(app.fake.calls_to("chat.update")) == 1 and len(dms_to(app, MEMBER)) == 1
    assert app.fake.responses == []  # no "already decided" for a retry


def test_two_managers_at_once_give_one_decision_and_already_decided_to_the_other(app, direct):
    pid, ts = posted_for_review(app, direct)
    direct.manager("UMANAGER2", "eco2@vendor.example")
    go = threading.Barrier(2)

    def click(user: str) -> None:
        go.wait()
        app.block_action(
            user, views.APPROVE_ACTION, str(pid), channel=MANAGER_CHANNEL, message_ts=ts
        )

    threads = [threading.Thread(target=click, args=(u,)) for u in (DESK_MANAGER, "UMANAGER2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [note] = app.fake.wait_for_response(1)
    assert "already decided" in note["text"]
    decision_notice(direct, pid)
    assert len(app.fake.calls_to("chat.update")) == 1
    assert direct.status(pid) == "preregistered"


def test_a_click_queued_for_the_worker_is_decided_and_its_post_updated_in_one_task(app, direct):
    """The durable way (the web process found the database busy): the worker's task that
    decides the click updates the post too. Before: a second notice, claimed later, did."""
    pid, ts = posted_for_review(app, direct)
    assert direct.service.queue_approval(DESK_MANAGER, pid, "1700000100.000300", None)
    notice = decision_notice(direct, pid)  # the worker finds the click on its own
    assert notice.result["updated_at_decision"] == ts
    [update] = app.fake.calls_to("chat.update")
    assert update.args["ts"] == ts
    assert direct.status(pid) == "preregistered"


def test_a_rejection_updates_the_post_from_the_web_process_and_the_outbox_sends_the_dm(app, direct):
    pid, ts = posted_for_review(app, direct)
    values = {"reason": {views.VALUE_ACTION: {"type": "plain_text_input", "value": "Not ours"}}}
    meta = json.dumps({"id": pid})
    response = app.view_submission(
        DESK_MANAGER, views.REJECT_CALLBACK, values, private_metadata=meta
    )
    assert response.status_code == 200 and not response.content
    [update] = app.fake.wait_for("chat.update")
    assert update.args["ts"] == ts
    notice = decision_notice(direct, pid)
    assert notice.result["updated_at_decision"] == ts
    eventually(lambda: dms_to(app, MEMBER), what="the submitter's DM")
    assert len(app.fake.calls_to("chat.update")) == 1 and len(dms_to(app, MEMBER)) == 1
