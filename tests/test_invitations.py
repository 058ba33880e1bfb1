"""Invitation tokens, states, acceptance (R6, R12) and the QR code, against the real service."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest
import qrcode
import zxingcpp
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

from bot import notices
from bot.invitations import (
    LOCKOUT,
    MAX_FAILED_ATTEMPTS,
    Invitation,
    Invitations,
    InviteState,
    TokenError,
    TokenSigner,
    page_for,
)
from bot.outbox.qr import MASK_PATTERN, qr_png
from store import deliveries
from tests.helpers import add_partner, form

SECRET = "unit-test-invite-secret"
BASE = "https://prereg.example.com"
ACME = "UACME1"
MANAGER = "UMANAGER1"


def decode_qr(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1, results
    return results[0].text


@pytest.fixture
def invitations(service, admin) -> Invitations:
    add_partner(admin, "Acme GmbH", ACME)
    admin.add_manager(MANAGER)
    return Invitations(service, SECRET, BASE)


@pytest.fixture
def prereg(service, invitations):
    return service.preregister(ACME, form(email="Clara.Customer@customer.de")).preregistration


def token_of(invitations: Invitations, view) -> str:
    return invitations.token_for(view)


# --- the token itself --------------------------------------------------------------------------


def test_token_round_trip_binds_id_and_email():
    signer = TokenSigner(SECRET)
    token = signer.sign(42, "clara@customer.de")
    claims = signer.verify(token)
    assert claims.preregistration_id == 42
    assert signer.email_matches(claims, "clara@customer.de")
    assert not signer.email_matches(claims, "other@customer.de")
    assert token.isascii() and "=" not in token and len(token) <= 60


def test_token_does_not_reveal_the_email():
    token = TokenSigner(SECRET).sign(7, "clara@customer.de")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"clara" not in raw and b"customer" not in raw


def test_every_altered_character_is_detected_as_tampering():
    signer = TokenSigner(SECRET)
    token = signer.sign(42, "clara@customer.de")
    for i in range(len(token)):
        replacement = "A" if token[i] != "A" else "B"
        altered = token[:i] + replacement + token[i + 1 :]
        with pytest.raises(TokenError):
            signer.verify(altered)


def test_changed_id_with_the_old_signature_is_tampering():
    signer = TokenSigner(SECRET)
    raw = bytearray(base64.urlsafe_b64decode(signer.sign(42, "a@b.de") + "=="))
    raw[8] = 43  # the last byte of the big-endian id
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="bad signature"):
        signer.verify(forged)


def test_token_signed_with_another_secret_is_refused():
    token = TokenSigner("someone-elses-secret").sign(42, "a@b.de")
    with pytest.raises(TokenError, match="bad signature"):
        TokenSigner(SECRET).verify(token)


@pytest.mark.parametrize("bad", ["", "x", "not a token", "ü" * 40, "A" * 500, "AAAA.BBBB"])
def test_malformed_tokens_are_refused(bad):
    with pytest.raises(TokenError):
        TokenSigner(SECRET).verify(bad)


def test_truncated_token_is_refused():
    token = TokenSigner(SECRET).sign(42, "a@b.de")
    with pytest.raises(TokenError):
        TokenSigner(SECRET).verify(token[:-3])


# --- the token against the current state ---------------------------------------------------


def test_link_is_the_public_base_url_plus_token(invitations, prereg):
    link = invitations.link_for(prereg)
    assert link == f"{BASE}/invite/{token_of(invitations, prereg)}"


def test_valid_invitation_resolves(invitations, prereg):
    invitation = invitations.resolve(token_of(invitations, prereg))
    assert invitation.state is InviteState.VALID
    assert invitation.preregistration.id == prereg.id


def test_forged_token_is_told_apart_from_a_lookup_miss(invitations, prereg):
    token = token_of(invitations, prereg)
    forged = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert invitations.resolve(forged).state is InviteState.FORGED
    unknown = invitations.signer.sign(prereg.id + 1000, "clara.customer@customer.de")
    assert invitations.resolve(unknown).state is InviteState.UNKNOWN


def test_token_for_another_email_on_the_same_row_is_not_accepted(invitations, prereg):
    token = invitations.signer.sign(prereg.id, "someone.else@customer.de")
    assert invitations.resolve(token).state is InviteState.UNKNOWN


def test_r5_token_is_useless_once_fifteen_days_pass_even_before_the_sweep(
    invitations, prereg, clock
):
    token = token_of(invitations, prereg)
    clock.advance(timedelta(days=15))
    assert invitations.resolve(token).state is InviteState.EXPIRED
    result = invitations.accept(token, prereg.email)
    assert result.state is InviteState.EXPIRED


def test_r5_token_is_useless_after_expiry(invitations, prereg, service, clock):
    token = token_of(invitations, prereg)
    service.expire_due(clock.now() + timedelta(days=16))
    assert invitations.resolve(token).state is InviteState.EXPIRED


def test_r9_token_is_useless_after_deletion(invitations, prereg, service):
    token = token_of(invitations, prereg)
    service.delete(ACME, [prereg.id])
    assert invitations.resolve(token).state is InviteState.DELETED
    assert invitations.accept(token, prereg.email).state is InviteState.DELETED
    assert service.view(prereg.id).status == "deleted"


def test_rejected_and_under_review_tokens_do_not_work(invitations, service):
    review = service.preregister(ACME, form(email="fr@client.fr", mobile="+33 6 12 34 56 78"))
    view = review.preregistration
    token = token_of(invitations, view)
    assert invitations.resolve(token).state is InviteState.PENDING_REVIEW
    service.reject(MANAGER, view.id, "Not a real customer")
    assert invitations.resolve(token).state is InviteState.REJECTED


# --- accepting (R6, R12) -----------------------------------------------------------------------


def test_r12_matching_email_in_any_case_associates(invitations, prereg, service, db):
    result = invitations.accept(token_of(invitations, prereg), "  CLARA.customer@Customer.DE ")
    assert result.state is InviteState.ASSOCIATED
    assert service.view(prereg.id).status == "associated"
    with db.session() as s:
        kinds = [d.kind for d in deliveries.for_preregistration(s, prereg.id)]
    assert notices.ASSOCIATED in kinds


def test_r12_token_is_useless_once_accepted(invitations, prereg):
    token = token_of(invitations, prereg)
    assert invitations.accept(token, prereg.email).state is InviteState.ASSOCIATED
    assert invitations.resolve(token).state is InviteState.USED
    assert invitations.accept(token, prereg.email).state is InviteState.USED


def test_r6_different_email_fails_and_changes_nothing(invitations, prereg, service):
    result = invitations.accept(token_of(invitations, prereg), "clara@other.de")
    assert result.state is InviteState.MISMATCH
    assert result.attempts_left == MAX_FAILED_ATTEMPTS - 1
    assert service.view(prereg.id).status == "preregistered"
    page = page_for(result)
    assert page.http_status == 422
    assert "must match the one Acme GmbH registered" in page.message


def test_empty_email_is_asked_for_and_not_counted(invitations, prereg):
    token = token_of(invitations, prereg)
    assert invitations.accept(token, "   ").state is InviteState.MISSING_EMAIL
    result = invitations.accept(token, "wrong@x.de")
    assert result.attempts_left == MAX_FAILED_ATTEMPTS - 1


def test_r6_repeated_wrong_attempts_lock_the_invitation_for_a_while(
    invitations, prereg, service, clock
):
    token = token_of(invitations, prereg)
    for i in range(MAX_FAILED_ATTEMPTS - 1):
        assert invitations.accept(token, f"guess{i}@x.de").state is InviteState.MISMATCH
    locked = invitations.accept(token, "last-guess@x.de")
    assert locked.state is InviteState.LOCKED
    assert locked.retry_at == clock.now() + LOCKOUT
    # even the right address waits until the lock ends
    assert invitations.accept(token, prereg.email).state is InviteState.LOCKED
    assert service.view(prereg.id).status == "preregistered"
    clock.advance(LOCKOUT + timedelta(seconds=1))
    assert invitations.accept(token, prereg.email).state is InviteState.ASSOCIATED


def test_wrong_attempts_after_a_quiet_spell_start_a_new_count(invitations, prereg, clock):
    token = token_of(invitations, prereg)
    for i in range(MAX_FAILED_ATTEMPTS - 1):
        invitations.accept(token, f"guess{i}@x.de")
    clock.advance(LOCKOUT + timedelta(minutes=1))
    result = invitations.accept(token, "again@x.de")
    assert result.state is InviteState.MISMATCH
    assert result.attempts_left == MAX_FAILED_ATTEMPTS - 1


def test_every_state_has_its_own_page():
    pages = {state: page_for(Invitation(state)) for state in InviteState}
    headings = [p.heading for p in pages.values()]
    assert len(set(headings)) == len(headings)
    assert pages[InviteState.VALID].show_form and pages[InviteState.VALID].http_status == 200
    assert pages[InviteState.FORGED].http_status == 400
    assert pages[InviteState.UNKNOWN].http_status == 404
    for gone in (InviteState.EXPIRED, InviteState.DELETED, InviteState.USED):
        assert pages[gone].http_status == 410 and not pages[gone].show_form
    assert pages[InviteState.LOCKED].http_status == 429


# --- the QR code -------------------------------------------------------------------------------


def test_r8_qr_code_decodes_to_exactly_the_link(invitations, prereg):
    link = invitations.link_for(prereg)
    png = qr_png(link)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert decode_qr(png) == link


@pytest.mark.parametrize("box_size", [1, 3, 8])
def test_qr_png_pixels_are_the_code_modules(box_size):
    """The PNG is written by hand (bot/outbox/qr.py): every pixel must be its module's colour, with
    the 4-module white border, in a PNG that Pillow reads."""
    data = "https://prereg.example.com/invite/" + "t" * 90
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, mask_pattern=MASK_PATTERN)
    code.add_data(data)
    modules = code.get_matrix()
    image = Image.open(io.BytesIO(qr_png(data, box_size=box_size))).convert("L")
    assert image.size == (len(modules) * box_size,) * 2
    pixels = image.load()
    for y in range(image.size[1]):
        for x in range(image.size[0]):
            dark = modules[y // box_size][x // box_size]
            assert pixels[x, y] == (0 if dark else 255), (x, y)
    assert not any(modules[0]) and not any(row[0] for row in modules)  # the border is white
    if box_size >= 3:
        assert decode_qr(qr_png(data, box_size=box_size)) == data


# --- Slack texts and Block Kit (pure builders in handlers/invitations.py) ----------------------


def test_slack_messages_escape_what_users_typed(service, invitations):
    from handlers import invitations as slack
    from tests.blockkit import assert_valid_message

    view = service.preregister(
        ACME, form(email="ceo@customer.de", name="<!channel> & <https://evil|click>")
    ).preregistration
    link = invitations.link_for(view)
    texts = [
        slack.share_comment(view, link),
        slack.associated_text(view),
        slack.email_pending_text(view),
        slack.email_failing_text(view, link),
        slack.email_sent_late_text(view),
        slack.email_request_reply(view),
    ]
    message = slack.share_button_message(view)
    assert_valid_message(message)
    texts += [message["text"], message["blocks"][0]["text"]["text"]]
    for text in texts:
        assert "<!channel>" not in text and "<https://evil" not in text
        assert "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;" in text
    assert f"<{link}|invitation link>" in texts[0]
    (button,) = message["blocks"][1]["elements"]
    assert (button["action_id"], button["value"]) == ("send_invitation_email", str(view.id))
