"""The scheduler inside `serve`: without anyone running `prereg-bot sweep`, due work is done
on the configured interval by the background worker process."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.admin import Admin
from bot.clock import FixedClock
from bot.service import PreregistrationService
from store.db import Database
from store.migrate import upgrade
from store.models import Preregistration
from tests.helpers import eventually, form
from tests.slackapp import RunningApp
from tests.slackfixtures import MEMBER, Direct, modal_values


@pytest.fixture
def scheduled_app(fake_slack, smtp_server, tmp_path):
    url = f"sqlite:///{tmp_path / 'scheduled.db'}"
    upgrade(url)
    fake_slack.reset()
    app = RunningApp(
        url,
        fake_slack,
        smtp_server,
        tmp_path,
        env={"PREREG_SCHEDULER": "true", "PREREG_SWEEP_INTERVAL_SECONDS": "1"},
    )
    yield app
    app.stop()


def test_r5_serve_expires_on_its_own_timer_and_tells_the_partner(scheduled_app):
    db = Database(scheduled_app.db_url)
    clock = FixedClock(datetime.now(UTC) - timedelta(days=16))
    Admin(db, clock).add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    row = PreregistrationService(db, clock).preregister("UACME1", form(send=False))
    with db.session() as s:  # delivered already: only the expiry is left to do
        s.execute(update(Preregistration).values(invited_at=clock.now()))
    scheduled_app.start()
    fake = scheduled_app.fake

    def expiry_notice():
        return [
            c
            for c in fake.calls_to("chat.postMessage")
            if c.args.get("channel") == "UACME1" and "expired" in str(c.args.get("text", ""))
        ]

    [notice] = eventually(expiry_notice, timeout=20, what="the expiry notice")
    assert "ceo@customer.de" in notice.args["text"]
    assert eventually(
        lambda: PreregistrationService(db, clock).view(row.preregistration.id).status == "expired"
    )
    db.dispose()


def _workers(pid: int) -> list[int]:
    """The worker processes `serve` started (they name themselves; not multiprocessing's
    resource tracker)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "prereg-worker":
                    found.append(child)
            except OSError:
                continue
    return found


@pytest.mark.reliability("fault", "background worker process killed: started again, nothing lost")
def test_a_killed_worker_is_started_again_and_delivers(app, tried):
    """`serve` watches its worker process; a notice recorded while it is dead goes out once
    the replacement runs."""
    tried(1)
    direct = Direct(app.db_url)
    direct.partner()
    # a spawned worker names itself once its interpreter has started
    [worker] = eventually(lambda: _workers(app.proc.pid), timeout=20, what="the worker")
    os.kill(worker, signal.SIGKILL)
    response = app.view_submission(MEMBER, "preregister", modal_values(send="no"))
    assert response.json()["response_action"] == "update"
    [upload] = app.fake.wait_for("files.completeUploadExternal", timeout=30)
    assert upload.args["channel_id"] == "D" + MEMBER
    replacement = eventually(lambda: _workers(app.proc.pid), what="a new worker")
    assert replacement != [worker]
