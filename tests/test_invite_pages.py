"""The invitation page and the invitation notices end to end: a running `prereg-bot serve`,
real HTTP, a real SMTP server, Slack's Web API on a local fake (R6, R8, R12)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
import zxingcpp
from PIL import Image

from bot.admin import Admin
from bot.clock import SystemClock
from bot.invitations import MAX_FAILED_ATTEMPTS, Invitations
from bot.service import PreregistrationService
from store.db import Database
from tests.helpers import eventually, form
from tests.slackapp import INVITE_SECRET

ACME = "UACME1"
BETA = "UBETA1"


@dataclass
class World:
    service: PreregistrationService
    invitations: Invitations

    def preregister(self, send: bool = False, email: str = "ceo@customer.de"):
        return self.service.preregister(ACME, form(email=email, send=send)).preregistration

    def link(self, view) -> str:
        return self.invitations.link_for(view)


@pytest.fixture
def world(app):
    db = Database(app.db_url)
    clock = SystemClock()
    admin = Admin(db, clock)
    admin.add_partner("Acme & Söhne", "DE", [ACME], contact_email="desk@acme.example")
    admin.add_partner("Beta AG", "DE", [BETA], contact_email="desk@beta.example")
    service = PreregistrationService(db, clock)
    yield World(service, Invitations(service, INVITE_SECRET, app.base_url))
    db.dispose()


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def open_form(http: requests.Session, link: str) -> str:
    page = http.get(link, timeout=10)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def submit(link: str, email: str, http: requests.Session | None = None) -> requests.Response:
    http = http or requests.Session()
    csrf = open_form(http, link)
    return http.post(link, data={"email": email, "csrf": csrf}, timeout=10)


def outcome(page: requests.Response) -> str:
    match = re.search(r'data-outcome="([a-z_]+)"', page.text)
    assert match, page.text
    return match.group(1)


def dm_texts(app, user: str) -> list[str]:
    return [
        str(c.args.get("text", ""))
        for c in app.fake.calls_to("chat.postMessage")
        if c.args.get("channel") == "D" + user
    ]


def decode_qr(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1
    return results[0].text


# --- the page ----------------------------------------------------------------------------------


def test_invitation_page_names_the_partner_and_is_locked_down(app, world):
    view = world.preregister()
    page = requests.get(world.link(view), timeout=10)
    assert page.status_code == 200
    assert outcome(page) == "valid"
    assert "Acme &amp; Söhne invites you" in page.text
    assert "Reseller" in page.text
    assert '<input id="email" name="email" type="email"' in page.text
    assert "<script" not in page.text
    headers = page.headers
    assert "script-src" not in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    css = requests.get(app.base_url + "/invite-assets/invite.css", timeout=10)
    assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]


def test_r12_matching_address_associates_and_tells_the_partner(app, world):
    view = world.preregister()
    page = submit(world.link(view), "  CEO@Customer.DE ")
    assert page.status_code == 200
    assert outcome(page) == "associated"
    assert "You are now Acme &amp; Söhne&#39;s customer" in page.text
    assert world.service.view(view.id).status == "associated"
    (call,) = app.fake.wait_for(
        "chat.postMessage", where=lambda c: "accepted the invitation" in c.args.get("text", "")
    )
    assert call.args["channel"] == "D" + ACME
    assert "Acme &amp; Söhne" in call.args["text"]  # escaped for mrkdwn


def test_r6_different_address_fails_and_changes_nothing(app, world):
    view = world.preregister()
    page = submit(world.link(view), "someone.else@customer.de")
    assert page.status_code == 422
    assert outcome(page) == "mismatch"
    assert "The address must match the one Acme &amp; Söhne registered for you" in page.text
    assert 'value="someone.else@customer.de"' in page.text  # kept to correct a typo
    assert world.service.view(view.id).status == "preregistered"
    app.sweep()
    assert not [t for t in dm_texts(app, ACME) if "accepted the invitation" in t]


@pytest.mark.reliability("attack", "guessing the invitation email (lockout)")
def test_r6_repeated_wrong_addresses_are_limited(app, world, tried):
    tried(6)
    view = world.preregister()
    link = world.link(view)
    http = requests.Session()
    statuses = [
        submit(link, f"guess{i}@x.de", http).status_code for i in range(MAX_FAILED_ATTEMPTS)
    ]
    assert statuses == [422] * (MAX_FAILED_ATTEMPTS - 1) + [429]
    page = submit(link, "ceo@customer.de", http)
    assert page.status_code == 429
    assert outcome(page) == "locked"
    assert "Too many attempts" in page.text
    assert world.service.view(view.id).status == "preregistered"


def test_r5_expired_invitation_says_so(app, world):
    view = world.preregister()
    app.sweep(at=later(days=16))
    assert world.service.view(view.id).status == "expired"
    for page in (
        requests.get(world.link(view), timeout=10),
        requests.post(world.link(view), data={"email": view.email}, timeout=10),
    ):
        assert page.status_code == 410
        assert outcome(page) == "expired"
        assert "This invitation has expired" in page.text
        assert "register you again" in page.text
    assert world.service.view(view.id).status == "expired"


def test_r9_deleted_invitation_says_so(app, world):
    view = world.preregister()
    world.service.delete(ACME, [view.id])
    page = requests.get(world.link(view), timeout=10)
    assert page.status_code == 410
    assert outcome(page) == "deleted"
    assert "withdrawn" in page.text


@pytest.mark.reliability("attack", "tampered, forged or reused invitation tokens")
def test_r12_used_invitation_says_so(app, world, tried):
    tried(1)
    view = world.preregister()
    link = world.link(view)
    http = requests.Session()
    csrf = open_form(http, link)
    assert submit(link, view.email).status_code == 200
    again = http.post(link, data={"email": view.email, "csrf": csrf}, timeout=10)
    assert again.status_code == 410
    assert outcome(again) == "used"
    assert "already been accepted" in requests.get(link, timeout=10).text


@pytest.mark.reliability("attack", "tampered, forged or reused invitation tokens")
def test_forged_and_tampered_tokens_are_refused(app, world, tried):
    tried(5)
    view = world.preregister()
    link = world.link(view)
    token = link.rsplit("/", 1)[1]
    tampered = token[:12] + ("A" if token[12] != "A" else "B") + token[13:]
    for bad in (tampered, token[:-1], "not-a-token", token + "A"):
        page = requests.get(f"{app.base_url}/invite/{bad}", timeout=10)
        assert page.status_code == 400, bad
        assert outcome(page) == "forged"
        assert "not valid" in page.text
        posted = requests.post(
            f"{app.base_url}/invite/{bad}", data={"email": view.email}, timeout=10
        )
        assert posted.status_code == 400
    unknown = world.invitations.signer.sign(view.id + 999, "ceo@customer.de")
    page = requests.get(f"{app.base_url}/invite/{unknown}", timeout=10)
    assert page.status_code == 404
    assert outcome(page) == "unknown"
    assert world.service.view(view.id).status == "preregistered"


@pytest.mark.reliability("attack", "cross-site request forgery on the invitation form")
def test_form_without_valid_csrf_changes_nothing(app, world, tried):
    tried(5)
    view = world.preregister()
    link = world.link(view)
    http = requests.Session()
    csrf = open_form(http, link)
    issued, mac = csrf.split(".", 1)
    attempts = [
        (http, {"email": view.email}),  # missing field
        (http, {"email": view.email, "csrf": f"{issued}.{mac[:-2]}xx"}),  # altered
        (http, {"email": view.email, "csrf": f"{int(issued) - 3 * 3600}.{mac}"}),  # too old
        (requests.Session(), {"email": view.email, "csrf": csrf}),  # no cookie (other site)
    ]
    for session, data in attempts:
        page = session.post(link, data=data, timeout=10)
        assert page.status_code == 400
        assert outcome(page) == "form_expired"
        assert 'name="csrf"' in page.text  # a fresh form to try again
    other = world.link(world.preregister(email="other@customer.de"))
    page = http.post(other, data={"email": "other@customer.de", "csrf": csrf}, timeout=10)
    assert page.status_code == 400  # a form for one invitation does not work for another
    assert world.service.view(view.id).status == "preregistered"
    # the genuine form still works
    assert http.post(link, data={"email": view.email, "csrf": csrf}, timeout=10).ok


# --- the notices (R8) ---------------------------------------------------------------------------


def test_r8_yes_emails_the_invitation_exactly_once(app, world):
    view = world.preregister(send=True)
    app.sweep()
    (received,) = app.smtp.mailbox.wait_for(1)
    assert received.rcpt_tos == [view.email]
    plain = received.message.get_body(("plain",)).get_content()
    assert world.link(view) in plain
    app.sweep(at=later(minutes=10))
    app.sweep(at=later(hours=2))
    assert len(app.smtp.mailbox.messages) == 1
    assert world.service.view(view.id).invited_at is not None
    # the emailed link works
    assert submit(world.link(view), view.email).status_code == 200


def test_r8_no_gives_the_partner_link_qr_and_a_button_to_email_later(app, world):
    view = world.preregister(send=False)
    app.sweep()
    (complete,) = app.fake.wait_for("files.completeUploadExternal")
    assert complete.args["channel_id"] == "D" + ACME
    assert world.link(view) in complete.args["initial_comment"]
    (upload,) = [u for u in app.fake.uploads.values() if u.content]
    assert decode_qr(upload.content) == world.link(view)
    (slot,) = app.fake.calls_to("files.getUploadURLExternal")
    assert slot.args["alt_txt"] == f"QR code of the invitation link for {view.full_name}"
    assert app.smtp.mailbox.messages == []

    app.sweep()  # the button message follows the upload (the worker may send it first)
    (button,) = app.fake.wait_for(
        "chat.postMessage", where=lambda c: "send_invitation_email" in str(c.args.get("blocks"))
    )
    assert button.args["channel"] == "D" + ACME
    assert str(view.id) in str(button.args["blocks"])

    refused = app.block_action(BETA, "send_invitation_email", value=str(view.id))
    assert refused.status_code == 200
    assert "not among your company's preregistrations" in app.fake.wait_for_response(1)[0]["text"]

    app.block_action(ACME, "send_invitation_email", value=str(view.id))
    reply = app.fake.wait_for_response(2)[1]
    assert reply["response_type"] == "ephemeral" and "on its way" in reply["text"]
    (received,) = app.smtp.mailbox.wait_for(1, timeout=15)
    assert received.rcpt_tos == [view.email]
    # the worker records the sending just after the SMTP server accepted the message
    eventually(lambda: world.service.view(view.id).invited_at, what="invited_at")
    app.block_action(ACME, "send_invitation_email", value=str(view.id))
    assert "already went" in app.fake.wait_for_response(3)[2]["text"]
    app.sweep(at=later(hours=1))
    assert len(app.smtp.mailbox.messages) == 1


@pytest.mark.reliability("fault", "SMTP server down: email pending, sent once later")
def test_r8_smtp_down_keeps_the_preregistration_and_delivers_once_later(app, world, tried):
    tried(1)
    app.smtp.stop()
    view = world.preregister(send=True)
    app.sweep()
    assert world.service.view(view.id).status == "preregistered"
    assert world.service.view(view.id).invited_at is None
    app.sweep()  # delivers the "pending" notice if the app's worker has not yet
    app.fake.wait_for(
        "chat.postMessage",
        where=lambda c: c.args.get("channel") == "D" + ACME and "is pending" in c.args["text"],
    )

    app.smtp.start()
    app.sweep(at=later(minutes=5))  # past the first backoff
    (received,) = app.smtp.mailbox.wait_for(1)
    assert received.rcpt_tos == [view.email]
    app.sweep(at=later(minutes=10))
    app.fake.wait_for(
        "chat.postMessage", where=lambda c: "has now been sent" in c.args.get("text", "")
    )
    app.sweep(at=later(hours=3))
    assert len(app.smtp.mailbox.messages) == 1
    assert len([t for t in dm_texts(app, ACME) if "is pending" in t]) == 1
