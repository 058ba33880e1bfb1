"""Bad input over the real HTTP paths of one running app: arbitrary text (hypothesis) in every
field of the modal, in the slash command and in the invitation form, and malformed Slack
payloads. Each gets a clear refusal or is stored and shown escaped; never a 500, never a
half-written state. SQLite keeps it fast; the paths are the same on PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from bot.invitations import Invitations
from handlers.mrkdwn import escape
from store.models import AuditEvent, Delivery, InviteAttempt, Preregistration
from tests.helpers import eventually
from tests.slackapp import INVITE_SECRET, SIGNING_SECRET
from tests.slackfixtures import MEMBER, Direct, modal_values
from tests.test_properties import EMAILS, MOBILES, NASTY

pytestmark = pytest.mark.parametrize("running_app", ["sqlite"], indirect=True)

CHECKS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=CHECKS, derandomize=True)
# Control sequences the app itself writes into mrkdwn: mentions, channels, links.
APP_MARKUP = re.compile(
    r"<(?:@U[A-Z0-9]+|#C[A-Z0-9]+|!date\^\d+\^[^<>|]+\|[^<>]*|https?://[^<>|]+(?:\|[^<>]*)?)>"
)


@pytest.fixture
def direct(app):
    d = Direct(app.db_url)
    d.partner()
    d.manager()
    yield d
    d.close()


def outbox_idle(direct: Direct) -> bool:
    """No notice due now is waiting: follow-ups of earlier examples have been recorded."""
    now = datetime.now(UTC)
    with direct.db.session() as s:
        due = s.scalars(select(Delivery.next_attempt_at).where(Delivery.status == "pending"))
        return all(at > now for at in due)


def counts(direct: Direct) -> dict[str, int]:
    eventually(lambda: outbox_idle(direct), what="the outbox to settle")
    with direct.db.session() as s:
        return {
            model.__tablename__: int(s.scalar(select(func.count()).select_from(model)))
            for model in (Preregistration, AuditEvent, Delivery)
        }


def strings(obj: Any) -> list[str]:
    """Every string value in a JSON-like structure (decoding JSON-encoded arguments)."""
    if isinstance(obj, str):
        if obj[:1] in "[{":
            try:
                return strings(json.loads(obj))
            except ValueError:
                pass
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in strings(v)]
    return []


def mrkdwn(obj: Any) -> list[str]:
    """Every string Slack interprets as mrkdwn: `text` of messages and of mrkdwn objects,
    file comments. plain_text objects are shown literally, so they are left out."""
    if isinstance(obj, str) and obj[:1] in "[{":
        try:
            return mrkdwn(json.loads(obj))
        except ValueError:
            return []
    if isinstance(obj, list):
        return [s for v in obj for s in mrkdwn(v)]
    if not isinstance(obj, dict) or obj.get("type") == "plain_text":
        return []
    found = []
    for key, value in obj.items():
        if key in ("text", "initial_comment") and isinstance(value, str):
            found.append(value)
        else:
            found += mrkdwn(value)
    return found


def assert_no_raw_markup(obj: Any) -> None:
    """Apart from the app's own mentions, dates and links, no `<` or `>` reaches Slack's
    mrkdwn; no stack trace anywhere."""
    for text in mrkdwn(obj):
        rest = APP_MARKUP.sub("", text)
        assert "<" not in rest and ">" not in rest, text[:300]
    assert not any("Traceback" in t for t in strings(obj))


def settle(direct: Direct, timeout: float = 15.0) -> None:
    """Waits until the app's delivery worker has sent (or given up on) every due notice."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with direct.db.session() as s:
            pending = s.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status == "pending", Delivery.attempts == 0)
            )
        if not pending:
            return
        time.sleep(0.2)


# --- the modal ---------------------------------------------------------------------------------


@pytest.mark.reliability("bad input", "arbitrary text in every modal field (signed HTTP)")
@FAST
@given(
    name=NASTY,
    email=EMAILS,
    mobile=MOBILES,
    send=st.one_of(st.sampled_from(["yes", "no"]), NASTY),
)
def test_modal_fields_refused_inline_or_stored_and_shown_escaped(
    app, direct, tried, name, email, mobile, send
):
    tried()
    before = counts(direct)
    response = app.view_submission(MEMBER, "preregister", modal_values(name, email, mobile, send))
    assert response.status_code == 200, app.log()
    body = response.json()
    after = counts(direct)
    if body["response_action"] == "errors":
        assert body["errors"] and all(m.strip() for m in body["errors"].values())
        assert set(body["errors"]) <= {"full_name", "email", "mobile", "send_invitation"}
        assert after["preregistrations"] == before["preregistrations"]
        assert after["deliveries"] == before["deliveries"]
        assert_no_raw_markup(body)
        return
    assert body["response_action"] == "update"
    assert body["view"]["callback_id"] == "preregister_done", body
    assert after["preregistrations"] == before["preregistrations"] + 1
    # the invitation notice, and the follow-ups the worker records once it went out
    assert after["deliveries"] >= before["deliveries"] + 1
    assert after["audit_events"] == before["audit_events"] + 1
    with direct.db.session() as s:
        row = s.scalars(select(Preregistration).order_by(Preregistration.id.desc())).first()
    assert row.full_name == " ".join(name.split())
    assert row.email == email.strip()
    assert row.send_invitation is (send != "no")
    assert_no_raw_markup(body)
    if "<" in row.full_name or ">" in row.full_name:
        assert any(escape(row.full_name) in t for t in strings(body))


@pytest.mark.reliability("bad input", "hostile names reach every Slack notice escaped")
def test_stored_hostile_names_are_escaped_in_every_notice_and_list(app, direct, tried):
    names = ["<!channel> & co", "<https://evil.example|click>", "a>b<c", "<@U0ADMIN>", "x" * 100]
    for i, name in enumerate(names):
        tried()
        mobile = "+33 6 12 34 56 78" if i % 2 else "+49 1512 3456789"  # some go to review
        values = modal_values(name, f"hostile{i}@customer.de", mobile, "no" if i % 3 else "yes")
        assert app.view_submission(MEMBER, "preregister", values).json()["response_action"] == (
            "update"
        )
    settle(direct)
    listed = app.ask(MEMBER, "list all")
    app.event({"type": "app_home_opened", "user": MEMBER, "tab": "home"})
    app.fake.wait_for("views.publish")
    app.fake.wait_for("chat.postMessage")
    output = [c.args for c in app.fake.calls] + list(app.fake.responses) + [listed]
    assert_no_raw_markup(output)
    text = "\n".join(strings(output))
    assert "&lt;!channel&gt; &amp; co" in text


# --- the slash command -------------------------------------------------------------------------

SUBCOMMANDS = ["", "list", "check", "delete", "notify", "digest", "flow", "help", "frob", "LIST"]


@pytest.mark.reliability("bad input", "arbitrary /preregister text (signed HTTP)")
@FAST
@given(sub=st.sampled_from(SUBCOMMANDS), rest=NASTY)
def test_command_text_gets_an_ephemeral_answer_and_changes_no_row(app, direct, tried, sub, rest):
    tried()
    if counts(direct)["preregistrations"] == 0:
        direct.prereg("kept@customer.de")
    text = f"{sub} {rest}".strip()
    before_rows = counts(direct)["preregistrations"]
    seen = len(app.fake.responses)
    opened = len(app.fake.calls_to("views.open"))
    response = app.command(MEMBER, text)
    assert response.status_code == 200
    assert response.elapsed.total_seconds() < 2.5
    if text.split():
        reply = app.seen_reply(response, seen)
        assert reply["response_type"] == "ephemeral"
        assert_no_raw_markup(reply)
    else:
        app.fake.wait_for("views.open", opened + 1)
    assert counts(direct)["preregistrations"] == before_rows
    with direct.db.session() as s:
        statuses = set(s.scalars(select(Preregistration.status)))
    assert statuses <= {"preregistered", "deleted"}


# --- the invitation form -----------------------------------------------------------------------


@pytest.mark.reliability("bad input", "arbitrary text in the invitation form (CSRF done right)")
@settings(max_examples=40, deadline=None, suppress_health_check=CHECKS, derandomize=True)
@given(email=st.one_of(NASTY, st.just("<script>alert(1)</script>@customer.de")))
def test_invitation_form_text_is_refused_or_accepted_and_echoed_escaped(app, direct, tried, email):
    tried()
    with direct.db.session() as s:
        row = s.scalars(select(Preregistration).where(Preregistration.status == "preregistered"))
        view_row = row.first()
    if view_row is None:
        view = direct.prereg(f"invitee{counts(direct)['preregistrations']}@customer.de")
    else:
        view = direct.service.view(view_row.id)
    with direct.db.session() as s:  # each example starts with a fresh count of wrong tries
        s.execute(
            update(Preregistration)
            .where(Preregistration.id == view.id)
            .values(invite_failed_attempts=0, invite_last_failed_at=None)
        )
        s.execute(delete(InviteAttempt))
    link = Invitations(direct.service, INVITE_SECRET, app.base_url).link_for(view)
    http = requests.Session()
    form = http.get(link, timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    page = http.post(link, data={"email": email, "csrf": csrf}, timeout=10)
    assert page.status_code in (200, 422), page.text[:500]
    assert "Traceback" not in page.text and "<script" not in page.text
    if "<" in email or ">" in email:
        assert email[:320].strip() not in page.text or not email.strip()
    status = direct.status(view.id)
    if page.status_code == 200:
        assert email.strip().lower() == view.email and status == "associated"
    else:
        assert status == "preregistered"
    assert "Content-Security-Policy" in page.headers


# --- malformed Slack payloads ------------------------------------------------------------------


def form_body(**fields: str) -> str:
    return urllib.parse.urlencode(fields)


def payload(obj: Any) -> str:
    return form_body(payload=json.dumps(obj))


USER = {"id": MEMBER}
MALFORMED: dict[str, tuple[str, str]] = {
    "payload is not JSON": (form_body(payload="{not json"), "application/x-www-form-urlencoded"),
    "payload is a list": (payload([1, 2]), "application/x-www-form-urlencoded"),
    "payload is a string": (payload("x"), "application/x-www-form-urlencoded"),
    "JSON body is not JSON": ("{bad", "application/json"),
    "JSON body is a list": ("[1]", "application/json"),
    "unknown payload type": (payload({"type": "frobnicate", "user": USER}), "application/json"),
    "block_actions without user": (
        payload({"type": "block_actions", "actions": [{"action_id": "review_approve"}]}),
        "application/x-www-form-urlencoded",
    ),
    "block_actions without actions": (
        payload({"type": "block_actions", "user": USER}),
        "application/x-www-form-urlencoded",
    ),
    "block_actions with empty actions": (
        payload({"type": "block_actions", "user": USER, "actions": []}),
        "application/x-www-form-urlencoded",
    ),
    "action value is an object": (
        payload(
            {
                "type": "block_actions",
                "user": USER,
                "actions": [{"action_id": "customers_delete", "value": {"id": 1}}],
            }
        ),
        "application/x-www-form-urlencoded",
    ),
    "view_submission without view": (
        payload({"type": "view_submission", "user": USER}),
        "application/x-www-form-urlencoded",
    ),
    "view_submission without user": (
        payload(
            {
                "type": "view_submission",
                "view": {"id": "V1", "type": "modal", "callback_id": "preregister"},
            }
        ),
        "application/x-www-form-urlencoded",
    ),
    "view state values are not blocks": (
        payload(
            {
                "type": "view_submission",
                "user": USER,
                "view": {
                    "id": "V1",
                    "type": "modal",
                    "callback_id": "preregister",
                    "state": {"values": {"email": "ceo@customer.de"}},
                },
            }
        ),
        "application/x-www-form-urlencoded",
    ),
    "slash command without user": (
        form_body(command="/preregister", text="list", trigger_id="t"),
        "application/x-www-form-urlencoded",
    ),
    "event without event": (json.dumps({"type": "event_callback"}), "application/json"),
    "app_home_opened without user": (
        json.dumps({"type": "event_callback", "event": {"type": "app_home_opened"}}),
        "application/json",
    ),
    "wrong content type": ("hello world", "text/plain"),
    "form sent as JSON content type": (form_body(command="/preregister"), "application/json"),
    "empty body": ("", "application/x-www-form-urlencoded"),
    "JSON array": ("[1, 2]", "application/json"),
    "enterprise is a number": (
        payload(
            {
                "type": "block_actions",
                "user": USER,
                "enterprise": 5,
                "actions": [{"action_id": "customers_delete", "value": "1"}],
            }
        ),
        "application/x-www-form-urlencoded",
    ),
    "authorizations is a number": (
        json.dumps({"type": "event_callback", "authorizations": 3, "event": {"type": "x"}}),
        "application/json",
    ),
    "JSON nested 50,000 deep": ("[" * 50_000 + "]" * 50_000, "application/json"),
}


@pytest.mark.reliability("bad input", "malformed Slack payloads refused cleanly (signed)")
def test_malformed_slack_payloads_are_refused_cleanly_and_store_nothing(app, direct, tried):
    before = counts(direct)
    for name, (body, content_type) in MALFORMED.items():
        tried()
        response = app.post_slack(body, content_type=content_type)
        assert response.status_code != 500, (name, app.log())
        assert 400 <= response.status_code < 500 or (
            response.status_code == 200 and not response.content
        ), (name, response.status_code, response.text[:200])
        assert "Traceback" not in response.text
    time.sleep(0.3)
    assert counts(direct) == before
    assert app.fake.calls_to("views.open") == []
    assert app.fake.responses == []
    log = app.log()
    assert "refused a malformed Slack request" in log
    assert "Traceback" not in log


@pytest.mark.reliability("bad input", "malformed Slack payloads refused cleanly (signed)")
def test_invalid_utf8_and_huge_payloads_are_refused(app, direct, tried):
    raw = b"payload=%7B%22type%22%3A%22block_actions%22\xff\xfe"
    ts = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256)
    response = app.http.post(
        app.base_url + "/slack/events",
        data=raw,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": f"v0={digest.hexdigest()}",
        },
        timeout=10,
    )
    tried()
    assert response.status_code in (400, 401), response.text[:200]
    tried()
    huge = app.post_slack(payload({"type": "block_actions", "pad": "x" * 1_100_000}))
    assert huge.status_code == 413
    assert counts(direct)["preregistrations"] == 0
