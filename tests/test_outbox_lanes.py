"""An Approve click does not queue behind slow external sends (issue 12, defect 6).

`prereg-bot serve` runs against a real SMTP relay that takes seconds per message; with many
invitation emails in flight, a manager's Approve is still applied at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import select

from bot import notices
from bot.clock import SystemClock
from bot.outbox.delivery import Deliverer, SenderRegistry
from handlers import views
from store import deliveries
from store.migrate import upgrade
from store.models import Delivery
from tests.conftest import _migrated_pg_database
from tests.helpers import eventually
from tests.mailbox import SmtpServer
from tests.slackapp import MANAGER_CHANNEL, RunningApp
from tests.slackfixtures import MANAGER, Direct

RELAY_SECONDS = 2.0  # per message
QUEUED = 16  # with 4 sent at a time, 8 s of email before the last one is through
APPLIED_WITHIN = 2.5


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def slow_app(request, fake_slack, tmp_path) -> Iterator[RunningApp]:
    with ExitStack() as cleanup:
        relay = SmtpServer(delay=RELAY_SECONDS).start()
        cleanup.callback(relay.stop)
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'app.db'}"
            upgrade(url)
        else:
            request.getfixturevalue("pg_url")  # skips, or fails in CI, without a server
            url = cleanup.enter_context(_migrated_pg_database("prereg_lanes"))
        fake_slack.reset()
        app = RunningApp(url, fake_slack, relay, tmp_path).start()
        cleanup.callback(app.stop)
        yield app


def emails_in_flight(direct: Direct) -> int:
    with direct.db.session() as s:
        rows = s.scalars(
            select(Delivery).where(
                Delivery.kind == notices.INVITATION_EMAIL,
                Delivery.status == "pending",
                Delivery.claim_token.is_not(None),
            )
        )
        return len(list(rows))


@pytest.mark.reliability("fault", "slow SMTP relay, emails queued: an Approve applies at once")
def test_approve_is_applied_at_once_while_slow_emails_are_queued(slow_app, tried):
    tried(QUEUED + 1)
    direct = Direct(slow_app.db_url)
    try:
        direct.partner()
        direct.manager()
        review = direct.prereg("client@customer.fr", mobile="+33 6 12 34 56 78")
        assert direct.status(review.id) == "under_review"
        direct.many(QUEUED)
        # the worker finds the emails on its own within seconds and starts sending
        eventually(lambda: emails_in_flight(direct), timeout=15, what="emails in flight")
        assert len(slow_app.smtp.mailbox.messages) < QUEUED // 2

        clicked = time.monotonic()
        response = slow_app.block_action(
            MANAGER,
            views.APPROVE_ACTION,
            str(review.id),
            channel=MANAGER_CHANNEL,
            message_ts="1700000001.000100",
        )
        assert response.status_code == 200
        eventually(lambda: direct.status(review.id) == "preregistered", timeout=30, what="approval")
        took = time.monotonic() - clicked
        assert took < APPLIED_WITHIN, f"the Approve was applied {took:.1f} s after the click"
    finally:
        direct.close()


@pytest.mark.reliability("fault", "a slow kind of notice never holds every sender slot")
def test_a_slow_kind_leaves_a_slot_for_the_others(db, tried):
    tried(13)
    now = SystemClock().now()
    posted: list[float] = []
    with db.session() as s:
        for i in range(12):
            deliveries.enqueue(s, kind="email", dedupe_key=f"email:{i}", payload={}, now=now)
        deliveries.enqueue(s, kind="post", dedupe_key="post:1", payload={}, now=now)
    registry = SenderRegistry()
    registry.register("email", lambda job: time.sleep(1.0))
    registry.register("post", lambda job: posted.append(time.monotonic()))
    started = time.monotonic()
    report = Deliverer(db, SystemClock(), registry).deliver_due()
    assert report.sent == 13
    assert posted and posted[0] - started < 0.5, "the post waited for the emails"
