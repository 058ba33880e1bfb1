"""The invitation email (R8 yes) through a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import io
import smtplib
from datetime import timedelta

import pytest
import zxingcpp
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from PIL import Image

from bot import notices
from bot.invitations import Invitations
from bot.outbox.delivery import Deliverer, SenderRegistry
from bot.outbox.mailer import (
    EMAIL_FAILING,
    EMAIL_PENDING,
    EMAIL_SENT_LATE,
    InvitationEmailSender,
    SmtpConfig,
    compose,
    send,
)
from store import deliveries
from tests.helpers import add_partner, form
from tests.mailbox import Mailbox, SmtpServer, free_port

SECRET = "mailer-test-secret"
BASE = "https://prereg.example.com"
SENDER = "prereg-bot@vendor.example"
ACME = "UACME1"


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def invitations(service, admin) -> Invitations:
    add_partner(admin, "Acme & Söhne GmbH", ACME)
    return Invitations(service, SECRET, BASE)


def config_for(server: SmtpServer, **extra) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=server.port, sender=SENDER, timeout=5, **extra)


def deliverer_for(service, invitations, config, clock, db) -> Deliverer:
    registry = SenderRegistry()
    registry.register(notices.INVITATION_EMAIL, InvitationEmailSender(service, invitations, config))
    return Deliverer(db, clock, registry)


def parts(message):
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    return plain, html, images


def decode_qr(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1
    return results[0].text


def kinds(db, pid: int) -> list[str]:
    with db.session() as s:
        return [d.kind for d in deliveries.for_preregistration(s, pid)]


def test_r8_invitation_email_has_both_parts_the_link_and_an_inline_qr_code(
    service, invitations, smtp, clock
):
    view = service.preregister(ACME, form(name="Clara <b>Customer</b>")).preregistration
    link = invitations.link_for(view)
    send(compose(view, link, SENDER, clock.now()), config_for(smtp))

    (received,) = smtp.mailbox.wait_for(1)
    message = received.message
    assert received.rcpt_tos == ["ceo@customer.de"]
    assert received.mail_from == SENDER
    assert message["To"] == "ceo@customer.de"
    assert message["Subject"] == "Acme & Söhne GmbH invites you to become its customer"
    assert message.get_content_type() == "multipart/alternative"

    plain, html, images = parts(message)
    text = plain.get_content()
    assert link in text
    assert "Acme & Söhne GmbH" in text and "Reseller" in text
    assert "8 December 2026, 10:00 UTC" in text  # T0 + 15 days
    body = html.get_content()
    assert f'href="{link}"' in body
    assert "Acme &amp; Söhne GmbH" in body and "Reseller" in body
    assert "Clara &lt;b&gt;Customer&lt;/b&gt;" in body  # autoescaped
    assert "8 December 2026" in body

    (image,) = images
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in body
    assert decode_qr(image.get_content()) == link
    related = [p for p in message.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1 and image in list(related[0].iter_parts())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_smtp_login_is_used_when_configured(service, invitations, clock):
    mailbox = Mailbox()
    logins: list[tuple[str, str]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login, auth_data.password) == (b"bot", b"s3cret")
        logins.append((auth_data.login.decode(), "ok" if ok else "bad"))
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        view = service.preregister(ACME, form()).preregistration
        message = compose(view, invitations.link_for(view), SENDER, clock.now())
        good = SmtpConfig("127.0.0.1", port, SENDER, "bot", "s3cret", timeout=5)
        send(message, good)
        assert len(mailbox.wait_for(1)) == 1
        assert logins == [("bot", "ok")]
        with pytest.raises(smtplib.SMTPException):  # no login: the server refuses the mail
            send(message, SmtpConfig("127.0.0.1", port, SENDER, timeout=5))
        assert len(mailbox.messages) == 1
    finally:
        controller.stop()


def test_r8_sender_emails_once_and_marks_invited(service, invitations, smtp, clock, db):
    view = service.preregister(ACME, form()).preregistration
    deliverer = deliverer_for(service, invitations, config_for(smtp), clock, db)
    assert deliverer.deliver_due().sent == 1
    assert len(smtp.mailbox.wait_for(1)) == 1
    assert service.view(view.id).invited_at == clock.now()
    clock.advance(timedelta(hours=2))
    assert deliverer.deliver_due().sent == 0
    assert len(smtp.mailbox.messages) == 1
    assert EMAIL_PENDING not in kinds(db, view.id)


def test_r8_failed_email_is_retried_and_the_partner_told_once(
    service, invitations, smtp, clock, db
):
    view = service.preregister(ACME, form()).preregistration
    deliverer = deliverer_for(service, invitations, config_for(smtp), clock, db)
    smtp.mailbox.refuse = True  # 550 on RCPT: the send raises

    assert deliverer.deliver_due().retried == 1
    assert service.view(view.id).status == "preregistered"
    assert service.view(view.id).invited_at is None
    assert kinds(db, view.id).count(EMAIL_PENDING) == 1
    assert EMAIL_FAILING not in kinds(db, view.id)

    for _ in range(2):  # attempts 2 and 3, each after its backoff
        clock.advance(timedelta(hours=1))
        assert deliverer.deliver_due().retried == 1
    assert kinds(db, view.id).count(EMAIL_PENDING) == 1
    assert kinds(db, view.id).count(EMAIL_FAILING) == 1

    smtp.mailbox.refuse = False
    clock.advance(timedelta(hours=1))
    assert deliverer.deliver_due().sent == 1
    assert len(smtp.mailbox.wait_for(1)) == 1
    assert kinds(db, view.id).count(EMAIL_SENT_LATE) == 1
    clock.advance(timedelta(hours=1))
    deliverer.deliver_due()
    assert len(smtp.mailbox.messages) == 1


def test_r8_server_down_keeps_the_preregistration(service, invitations, clock, db):
    view = service.preregister(ACME, form()).preregistration
    dead = SmtpConfig("127.0.0.1", free_port(), SENDER, timeout=2)
    deliverer = deliverer_for(service, invitations, dead, clock, db)
    assert deliverer.deliver_due().retried == 1
    assert service.view(view.id).status == "preregistered"
    assert EMAIL_PENDING in kinds(db, view.id)


def test_no_email_for_a_preregistration_deleted_before_sending(
    service, invitations, smtp, clock, db
):
    view = service.preregister(ACME, form()).preregistration
    service.delete(ACME, [view.id])
    deliverer = deliverer_for(service, invitations, config_for(smtp), clock, db)
    report = deliverer.deliver_due()
    assert (report.sent, report.failed) == (0, 1)
    assert smtp.mailbox.messages == []


def test_no_email_for_a_preregistration_that_lapsed_before_sending(
    service, invitations, smtp, clock, db
):
    service.preregister(ACME, form())
    clock.advance(timedelta(days=15, minutes=1))
    deliverer = deliverer_for(service, invitations, config_for(smtp), clock, db)
    report = deliverer.deliver_due()
    assert (report.sent, report.failed) == (0, 1)
    assert smtp.mailbox.messages == []


@pytest.fixture
def tls_cert(tmp_path, monkeypatch):
    """A self-signed certificate for 127.0.0.1, trusted by this process's default context."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


def test_starttls_then_login_when_the_server_requires_them(service, invitations, clock, tls_cert):
    import ssl

    cert, key = tls_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    mailbox = Mailbox()

    def authenticator(server, session, envelope, mechanism, auth_data):
        assert session.ssl is not None, "credentials must only travel over TLS"
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"bot", b"s3cret"))

    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        view = service.preregister(ACME, form()).preregistration
        message = compose(view, invitations.link_for(view), SENDER, clock.now())
        with pytest.raises(smtplib.SMTPException):  # plain text is refused by this server
            send(message, SmtpConfig("127.0.0.1", port, SENDER, "bot", "s3cret", timeout=5))
        tls = SmtpConfig("127.0.0.1", port, SENDER, "bot", "s3cret", starttls=True, timeout=5)
        send(message, tls)
        [received] = mailbox.wait_for(1)
        assert received.rcpt_tos == ["ceo@customer.de"]
    finally:
        controller.stop()
