"""Faults against the running app: Slack answering 429, 500 or not at all (on the request path
and for outbox notices), the SMTP server refusing mail, PostgreSQL restarting under load.
Each: no preregistration lost, no notice lost or sent twice, the app recovers by itself, and
the user is told what is pending. (A sweep killed mid-run and an SMTP server that is down are
in tests/test_sweep_e2e.py and tests/test_invite_pages.py.)"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from store.models import Delivery, Preregistration
from tests.mailbox import free_port
from tests.slackapp import MANAGER_CHANNEL
from tests.slackfixtures import MEMBER, Direct, body_text, modal_values
from tests.test_sweep_e2e import ACME, World, iso, make_world, summary

SQLITE = pytest.mark.parametrize("running_app", ["sqlite"], indirect=True)
SLACK_BUSY = "Slack did not open the form just now"


@pytest.fixture
def world(app) -> Iterator[World]:
    """The app's database seen through a clock a week ahead, so only explicit sweeps (not the
    app's own worker) deliver what these tests record."""
    w = make_world(app.db_url)
    w.admin.add_partner("Acme", "DE", [ACME], contact_email="desk@acme.example")
    yield w
    w.db.dispose()


def pending_or_sent(world: World) -> Counter[str]:
    with world.db.session() as s:
        return Counter(s.scalars(select(Delivery.status)))


# --- Slack on the request path -----------------------------------------------------------------

SLACK_FAULTS = {
    "500": lambda fake: fake.fail("views.open", 500, times=3),
    "429 Retry-After": lambda fake: fake.fail("views.open", 429, retry_after=1, times=3),
    "down": lambda fake: fake.down(4),
}


@SQLITE
@pytest.mark.reliability("fault", "Slack 429/500/down when /preregister opens the form")
@pytest.mark.parametrize("fault", list(SLACK_FAULTS))
def test_form_not_opened_tells_the_user_and_the_next_try_works(app, tried, fault):
    direct = Direct(app.db_url)
    direct.partner()
    SLACK_FAULTS[fault](app.fake)
    tried()
    response = app.command(MEMBER, "")
    assert response.status_code == 200 and response.elapsed.total_seconds() < 2.5
    [reply] = app.fake.wait_for_response(1, timeout=15)
    assert reply["response_type"] == "ephemeral"
    assert SLACK_BUSY in reply["text"] and "Nothing was saved" in reply["text"]
    assert "Traceback" not in body_text(reply) and "SlackApiError" not in body_text(reply)
    assert "views.open for UMEMBER1 failed" in app.log()
    app.fake.down_until = 0.0
    before = len(app.fake.calls_to("views.open"))
    assert app.command(MEMBER, "").status_code == 200
    opened = app.fake.wait_for("views.open", before + 1)
    assert opened[-1].json_arg("view")["callback_id"] == "preregister"
    assert direct.service.list_customers(MEMBER).total == 0
    direct.close()


# --- Slack for outbox notices ------------------------------------------------------------------


@SQLITE
@pytest.mark.reliability("fault", "Slack down, then unreachable, for outbox notices")
def test_notices_wait_out_slack_being_down_or_unreachable_and_go_once(app, world, tried):
    review = world.preregister(ACME, "client@customer.fr", mobile="+33 6 12 34 56 78")
    share = world.preregister(ACME, "ceo@customer.de", send=False)
    at = world.clock.now() + timedelta(seconds=5)

    app.fake.down(120)  # every Web API call answers 503
    tried()
    assert summary(app.sweep(at=iso(at)))["retrying"] == 2
    unreachable = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens: no answer at all
    tried()
    done = app.cli(
        "sweep",
        "--at",
        iso(at + timedelta(minutes=1)),
        "--yes",
        env={"SLACK_API_URL": unreachable},
    )
    assert done.returncode == 0, done.stderr
    assert summary(done)["retrying"] == 2
    assert pending_or_sent(world) == {"pending": 2}
    assert {world.prereg(review.id).status, world.prereg(share.id).status} == {
        "under_review",
        "preregistered",
    }

    app.fake.reset()  # Slack is back
    for minutes in (5, 120):
        app.sweep(at=iso(at + timedelta(minutes=minutes)))
    posted = app.fake.calls_to("chat.postMessage")
    to_managers = [c for c in posted if c.args.get("channel") == MANAGER_CHANNEL]
    assert len(to_managers) == 1 and "client@customer.fr" in body_text(to_managers[0].args)
    uploads = app.fake.calls_to("files.completeUploadExternal")
    qr_codes = [c for c in uploads if "Invitation QR code" in str(c.args.get("files"))]
    assert len(qr_codes) == 1  # the week's program report may be uploaded too (a Monday)
    buttons = [
        c
        for c in app.fake.calls_to("chat.postMessage")
        if "send_invitation_email" in str(c.args.get("blocks"))
    ]
    assert len(buttons) == 1
    assert set(pending_or_sent(world)) == {"sent"}
    with world.db.session() as s:
        kinds = Counter(s.scalars(select(Delivery.kind)))
    assert kinds["review_request"] == kinds["invitation_share"] == 1, kinds


# --- SMTP refusing -----------------------------------------------------------------------------


@SQLITE
@pytest.mark.reliability("fault", "SMTP server refuses the invitation email, then accepts")
def test_refused_email_is_reported_pending_and_sent_once_later(app, world, tried):
    app.smtp.mailbox.refuse = True
    view = world.preregister(ACME, send=True)
    at = world.clock.now() + timedelta(seconds=5)
    tried()
    app.sweep(at=iso(at))
    assert world.prereg(view.id).status == "preregistered"
    assert world.prereg(view.id).invited_at is None
    dms = [c.args["text"] for c in app.fake.calls_to("chat.postMessage")]
    assert len([t for t in dms if "is pending" in t and "ceo@customer.de" in t]) == 1
    assert app.smtp.mailbox.messages == []

    app.smtp.mailbox.refuse = False
    for minutes in (5, 30, 180):
        app.sweep(at=iso(at + timedelta(minutes=minutes)))
    (received,) = app.smtp.mailbox.messages
    assert received.rcpt_tos == ["ceo@customer.de"]
    dms = [c.args["text"] for c in app.fake.calls_to("chat.postMessage")]
    assert len([t for t in dms if "has now been sent" in t]) == 1
    assert len([t for t in dms if "is pending" in t]) == 1
    assert world.prereg(view.id).invited_at is not None


# --- PostgreSQL restarting under load ----------------------------------------------------------


def restart_postgres() -> float:
    """Restarts the machine's PostgreSQL cluster; returns how long it took."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    start = time.monotonic()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return time.monotonic() - start


def wait_until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False).returncode == 0


def healthy(app) -> bool:  # type: ignore[no-untyped-def]
    try:
        return requests.get(app.base_url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def outcome_of(body: dict) -> str:
    if body.get("response_action") == "update":
        if body["view"].get("callback_id") == "preregister_done":
            return "confirmed"
        if "Something went wrong" in body_text(body["view"]):
            return "error view"
    if body.get("response_action") == "errors":
        return "inline error"
    return f"unexpected: {str(body)[:200]}"


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(not Path("/etc/postgresql").is_dir(), reason="needs a local PostgreSQL cluster")
@pytest.mark.parametrize("running_app", ["postgres"], indirect=True)
@pytest.mark.reliability("fault", "PostgreSQL restarts under load (submissions over HTTP)")
def test_postgres_restart_under_load_loses_and_doubles_nothing(app, tried):
    direct = Direct(app.db_url)
    clients = 4
    per_client = 3  # partners per client, so R4's cap of 100 stays out of the way
    for n in range(clients * per_client + 1):
        direct.partner(f"Partner{n} GmbH", member=f"UPG{n}")
    app.fake.slow["files.completeUploadExternal"] = 0.5  # notices are in flight at the restart
    results: list[tuple[str, str, str]] = []  # (view id, email, outcome)
    failures: list[str] = []
    stop = threading.Event()

    def client(n: int) -> None:
        http_app = copy.copy(app)
        http_app.http = requests.Session()  # a session is not shared between threads
        i = 0
        while not stop.is_set():
            i += 1
            view_id, email = f"VPG{n}X{i}", f"c{n}x{i}@customer.de"
            send = "yes" if i % 2 else "no"
            try:
                response = http_app.view_submission(
                    f"UPG{n * per_client + i % per_client}",
                    "preregister",
                    modal_values(email=email, send=send),
                    view_id=view_id,
                )
            except requests.RequestException as exc:
                failures.append(f"{view_id}: {type(exc).__name__}: {exc}")
                continue
            if response.status_code != 200:
                failures.append(f"{view_id}: HTTP {response.status_code}")
                continue
            results.append((view_id, email, outcome_of(response.json())))
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        took = restart_postgres()
        wait_until(pg_ready, 60, "pg_isready")
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        wait_until(pg_ready, 60, "pg_isready")
    tried(len(results) + 1)
    assert not failures, failures[:5]
    outcomes = Counter(o for _, _, o in results)
    assert set(outcomes) <= {"confirmed", "error view"}, outcomes
    assert outcomes["error view"] >= 1, (outcomes, took)  # the restart did hit submissions
    assert outcomes["confirmed"] >= 1, outcomes

    wait_until(lambda: healthy(app), 30, "/healthz 200")
    after = app.view_submission(
        f"UPG{clients * per_client}", "preregister", modal_values(email="after@customer.de")
    )
    assert outcome_of(after.json()) == "confirmed", (after.json(), outcomes)

    with direct.db.session() as s:
        by_key = Counter(s.scalars(select(Preregistration.request_key)))
        by_email = Counter(s.scalars(select(Preregistration.email_norm)))
    confirmed = [(v, e) for v, e, o in results if o == "confirmed"]
    assert all(by_key[v] == 1 for v, _ in confirmed)
    assert all(by_email[e] == 1 for _, e in confirmed)
    assert max(by_email.values()) == 1

    # Every notice goes out exactly once. Stop the app (its worker hands back what it claimed),
    # then sweep past the lease of any attempt the restart broke off, then start it again.
    app.fake.slow.clear()
    app.stop()
    later = iso(direct.clock.now() + timedelta(minutes=10))
    app.sweep(at=later)
    app.sweep(at=later)
    app.start()
    with direct.db.session() as s:
        statuses = Counter(s.scalars(select(Delivery.status)))
        rows = int(s.scalar(select(func.count()).select_from(Preregistration)))
        no_send = int(
            s.scalar(
                select(func.count())
                .select_from(Preregistration)
                .where(Preregistration.send_invitation.is_(False))
            )
        )
    assert set(statuses) == {"sent"}, statuses
    # What the partner sees is a completed upload (files.completeUploadExternal shares the file
    # in the DM). An upload begun but never completed (the worker stopped while its paced call
    # waited) shows nothing, and is begun afresh by the retry.
    completed = [
        f["id"]
        for c in app.fake.calls_to("files.completeUploadExternal")
        for f in json.loads(c.args["files"])
    ]
    uploads = Counter(app.fake.uploads[file_id].filename for file_id in completed)
    assert len(uploads) == no_send and max(uploads.values()) == 1, uploads.most_common(3)
    emails = Counter(r for m in app.smtp.mailbox.messages for r in m.rcpt_tos)
    assert len(emails) == rows - no_send and max(emails.values()) == 1, emails.most_common(3)
    direct.close()
