"""Customers' personal data (issue 18, docs/privacy.md), driven as the operator and the users
drive it: a running `prereg-bot serve`, its CLI (`sweep`, `customers forget`, `customers
export-person`, `customers export`), Slack requests and the invitation pages over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, insert, select, text

from bot.invitations import Invitations, derive_key
from handlers import views
from store.models import AuditEvent
from tests.slackapp import INVITE_SECRET
from tests.slackfixtures import MEMBER, modal_values

CLARA = "clara.private@customer.de"
CLARA_MOBILE = "+49 1512 3456789"
CLARA_NAME = "Clara Privatperson"


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def dump(app) -> str:  # type: ignore[no-untyped-def]
    """Every row of the tables that could hold personal data, as text."""
    engine = create_engine(app.db_url)
    try:
        with engine.connect() as conn:
            parts = [
                str(list(conn.execute(text(f"SELECT * FROM {table}"))))
                for table in ("preregistrations", "deliveries", "audit_events", "invite_attempts")
            ]
    finally:
        engine.dispose()
    return "\n".join(parts)


def events(app, action: str) -> list:  # type: ignore[no-untyped-def]
    engine = create_engine(app.db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(AuditEvent).where(AuditEvent.action == action)))
    finally:
        engine.dispose()


def hashed(email: str) -> str:
    key = derive_key(INVITE_SECRET, "retention-email")  # PREREG_PRIVACY_KEY unset
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def no_trace_of_clara(app) -> bool:  # type: ignore[no-untyped-def]
    everything = dump(app).lower()
    return all(
        t.lower() not in everything for t in (CLARA, CLARA_NAME, "1512 3456789", "15123456789")
    )


# --- retention -------------------------------------------------------------------------------


@pytest.mark.reliability("bad input", "personal data kept past the retention period")
def test_sweep_erases_ended_preregistrations_after_the_retention_period(app, direct, tried):
    tried(3)
    direct.partner()
    ended = direct.prereg(CLARA, name=CLARA_NAME, mobile=CLARA_MOBILE, send=True)
    app.sweep()
    app.smtp.mailbox.wait_for(1)
    direct.service.delete(MEMBER, [ended.id])
    recent = direct.prereg("still.here@customer.de", name="Other Person", mobile="+49 1512 9998887")

    app.sweep(at=later(days=364))  # not yet
    assert direct.service.view(ended.id).email == CLARA

    app.sweep(at=later(days=366))
    erased = direct.service.view(ended.id)
    assert (erased.full_name, erased.email, erased.mobile) == ("", "", "")
    assert erased.status == "deleted"  # the row stays for counts
    assert no_trace_of_clara(app)
    engine = create_engine(app.db_url)
    with engine.connect() as conn:
        kept = conn.execute(
            text("SELECT email_hash FROM preregistrations WHERE id = :id"), {"id": ended.id}
        ).scalar_one()
    engine.dispose()
    assert kept == hashed(CLARA)
    # expired 15 days after it was made: ended less than 365 days before
    assert direct.service.view(recent.id).email == "still.here@customer.de"
    assert events(app, "retention_erase")

    shorter = direct.prereg("short@customer.de")
    direct.service.delete(MEMBER, [shorter.id])
    done = app.cli("sweep", "--at", later(days=31), "--yes", env={"PREREG_RETENTION_DAYS": "30"})
    assert done.returncode == 0, done.stderr
    assert direct.service.view(shorter.id).email == ""
    bad = app.cli("sweep", env={"PREREG_RETENTION_DAYS": "soon"})
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "PREREG_RETENTION_DAYS" in bad.stderr


# --- erasure and access requests ---------------------------------------------------------------


@pytest.mark.reliability("bad input", "erasure request: everywhere, never while Associated")
def test_forget_erases_one_person_everywhere_and_is_audited_without_the_address(app, direct, tried):
    tried(4)
    direct.partner()
    first = direct.prereg(CLARA, name=CLARA_NAME, mobile=CLARA_MOBILE, send=True)
    app.sweep()
    app.smtp.mailbox.wait_for(1)
    direct.service.delete(MEMBER, [first.id])
    app.smtp.stop()  # the next invitation email stays pending
    second = direct.prereg(CLARA, name=CLARA_NAME, mobile=CLARA_MOBILE, send=True)
    app.sweep()
    engine = create_engine(app.db_url)
    with engine.begin() as conn:  # an entry written before addresses were kept out of the audit
        conn.execute(
            insert(AuditEvent).values(
                at=datetime.now(UTC),
                actor=f"customer:{CLARA}",
                action="associate",
                result="refused:x",
                detail={"email": CLARA},
            )
        )
    engine.dispose()

    bad = app.cli("customers", "forget", "not an address")
    assert bad.returncode == 2 and "email" in bad.stderr and "Traceback" not in bad.stderr

    done = app.cli("customers", "forget", CLARA.upper())
    assert done.returncode == 0, done.stderr
    assert "erased: 2 preregistration(s)" in done.stdout
    assert no_trace_of_clara(app)
    assert direct.service.view(second.id).status == "deleted"
    (event,) = events(app, "forget")
    assert CLARA not in json.dumps(event.detail) and event.detail["email_hash"] == hashed(CLARA)
    app.smtp.start()
    app.sweep(at=later(hours=2))
    assert len(app.smtp.mailbox.messages) == 1  # only the first: the pending one was cancelled


def test_forget_refuses_while_the_person_is_associated(app, direct):
    direct.partner()
    view = direct.prereg(CLARA)
    direct.service.associate(view.id, CLARA)
    refused = app.cli("customers", "forget", CLARA)
    assert refused.returncode == 1
    assert "refused" in refused.stderr and "Associated" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0
    assert direct.service.view(view.id).email == CLARA


def test_export_person_writes_everything_held_as_json(app, direct, tmp_path: Path):
    direct.partner()
    view = direct.prereg(CLARA, name=CLARA_NAME, mobile=CLARA_MOBILE)
    direct.prereg("someone.else@customer.de")
    out = tmp_path / "clara.json"
    done = app.cli("customers", "export-person", CLARA, "-o", str(out))
    assert done.returncode == 0, done.stderr
    held = json.loads(out.read_text())
    (row,) = held["preregistrations"]
    assert (row["id"], row["email"], row["full_name"]) == (view.id, CLARA, CLARA_NAME)
    assert row["mobile"] and row["partner"] == "Acme GmbH"
    assert [e["action"] for e in held["audit_events"]] == ["preregister"]
    assert "someone.else" not in out.read_text()
    (event,) = events(app, "export_person")
    assert CLARA not in json.dumps(event.detail)


# --- who saw what ------------------------------------------------------------------------------


def test_show_contact_details_and_csv_exports_are_audited(app, direct, tmp_path: Path):
    direct.partner()
    ids = [direct.prereg(f"c{i}@customer.de").id for i in range(2)]
    state = json.dumps({"o": 0, "f": views.DEFAULT_FILTER, "c": 1})
    assert app.block_action(MEMBER, views.LIST_TOGGLE_ACTION, value=state).status_code == 200
    app.fake.wait_for_response(1)
    (shown,) = events(app, "show_contacts")
    assert shown.actor == MEMBER and sorted(shown.detail["ids"]) == sorted(ids)

    done = app.cli("customers", "export", "-o", str(tmp_path / "all.csv"))
    assert done.returncode == 0, done.stderr
    (exported,) = events(app, "export_customers")
    assert sorted(exported.detail["ids"]) == sorted(ids) and exported.at is not None


# --- logs --------------------------------------------------------------------------------------


@pytest.mark.reliability("attack", "contact details or invitation tokens in the logs")
def test_logs_of_a_full_run_hold_no_contact_details_or_tokens(app, direct, tried):
    tried(6)
    direct.partner()
    direct.manager()
    people = [
        ("Dora Daten", "dora.daten@customer.de", "+49 1512 7654321"),
        ("Erik Eintrag", "erik.eintrag@customer.de", "+49 1512 1112223"),
        ("Fanny Frei", "fanny.frei@customer.de", "+49 1512 4445556"),
    ]
    outputs = []
    for name, email, mobile in people:
        answer = app.view_submission(
            MEMBER, "preregister", modal_values(name=name, email=email, mobile=mobile)
        )
        assert answer.status_code == 200
    outputs.append(app.sweep())
    app.smtp.mailbox.wait_for(3)
    invitations = Invitations(direct.service, INVITE_SECRET, app.base_url)
    views_ = {v.email: v for v in direct.service.list_customers(MEMBER).items}
    links = {email: invitations.link_for(views_[email]) for _, email, _ in people}
    http = requests.Session()
    for email, typed in ((people[0][1], "wrong.guess@customer.de"), (people[0][1], people[0][1])):
        page = http.get(links[email], timeout=10)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        http.post(links[email], data={"email": typed, "csrf": csrf}, timeout=10)
    not_me = links[people[1][1]] + "/not-me"
    csrf = re.search(r'name="csrf" value="([^"]+)"', http.get(not_me).text).group(1)
    http.post(not_me, data={"csrf": csrf}, timeout=10)
    requests.post(links[people[2][1]], data={"email": people[2][1]}, timeout=10)  # no CSRF
    outputs.append(app.sweep(at=later(days=20)))

    log = (app.workdir / f"serve-{app.port}.log").read_text(errors="replace")
    log += "".join(o.stdout + o.stderr for o in outputs)
    assert "invitation page refused" in log  # the run did log
    for name, email, mobile in people:
        digits = re.sub(r"\D", "", mobile)
        for secret in (name, email, mobile, digits, digits[2:], "wrong.guess@customer.de"):
            assert secret.lower() not in log.lower(), secret
    for link in links.values():
        assert link.rsplit("/", 1)[1] not in log
