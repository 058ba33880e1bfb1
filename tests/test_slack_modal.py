"""The preregistration modal's submission end to end: field errors and rule refusals inline,
the confirmation in place of the form, one row per submission even when Slack retries."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.blockkit import assert_valid_view
from tests.helpers import directory_row
from tests.slackfixtures import MANAGER_EMAIL, MEMBER, OTHER_MEMBER, body_text, modal_values

ACK_SANITY_BOUND = 2.5


def submit(app, user: str = MEMBER, view_id: str | None = None, headers=None, **fields) -> dict:
    response = app.view_submission(
        user, "preregister", modal_values(**fields), view_id=view_id, headers=headers
    )
    assert response.status_code == 200
    assert response.elapsed.total_seconds() < ACK_SANITY_BOUND
    return response.json()


def test_bad_fields_show_inline_and_store_nothing(app, direct):
    direct.partner()
    body = submit(app, name="  ", email="ceo+tag@customer.de", mobile="12")
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"full_name", "email", "mobile"}
    assert "only plain letters (no accents), digits" in body["errors"]["email"]
    assert direct.service.list_customers(MEMBER).total == 0


def test_r1_refusal_shows_on_the_form(app, direct):
    direct.partner(contact=False)
    direct.manager()
    body = submit(app)
    assert body["response_action"] == "errors"
    assert "reserved contact" in body["errors"]["email"]
    assert MANAGER_EMAIL in body["errors"]["email"]  # R13


def test_r2_refusal_names_the_cause_inline(app, direct):
    direct.partner()
    direct.manager()
    direct.directory(directory_row("ceo@customer.de", consumer=True))
    body = submit(app)
    assert body == {
        "response_action": "errors",
        "errors": {
            "email": "The customer is a consumer-cloud user. Questions? Ecosystem manager: "
            + MANAGER_EMAIL
        },
    }
    assert direct.service.list_customers(MEMBER).total == 0


def test_r5_customer_held_by_another_partner_is_refused_inline(app, direct):
    direct.partner()
    direct.partner("Rival AG", member=OTHER_MEMBER)
    direct.prereg("ceo@customer.de", user=OTHER_MEMBER)
    body = submit(app)
    assert "preregistered by another partner" in body["errors"]["email"]


def test_r4_quota_refusal_inline(app, direct):
    direct.partner()
    direct.many(100)
    body = submit(app, email="one-more@customer.de")
    assert "100" in body["errors"]["email"]
    assert direct.service.list_customers(MEMBER).total == 100


def test_success_replaces_the_form_with_the_confirmation(app, direct):
    direct.partner()
    body = submit(app)
    assert body["response_action"] == "update"
    assert_valid_view(body["view"])
    text = body_text(body["view"])
    assert "Preregistered" in text and "Valid until" in text
    assert "invitation email is being sent to ceo@customer.de" in text
    [row] = direct.service.list_customers(MEMBER).items
    assert row.status == "preregistered" and row.send_invitation


def test_no_invitation_says_link_and_qr_code_come_by_dm(app, direct):
    direct.partner()
    body = submit(app, send="no")
    assert "link and QR code in a DM" in body_text(body["view"])
    assert direct.service.list_customers(MEMBER).items[0].send_invitation is False


def test_other_country_confirms_under_review_with_due_time(app, direct):
    direct.partner()
    body = submit(app, email="client@customer.fr", mobile="+33 6 12 34 56 78")
    assert_valid_view(body["view"])
    text = body_text(body["view"])
    assert "Under review" in text and "Review due by" in text
    assert "(FR)" in text and "(DE)" in text


@pytest.mark.reliability("fault", "Slack retries a modal submission")
def test_slack_retry_of_a_submission_creates_one_row(app, direct, tried):
    tried(1)
    direct.partner()
    first = submit(app, view_id="VRETRY1")
    again = submit(app, view_id="VRETRY1", headers={"X-Slack-Retry-Num": "1"})
    assert first["response_action"] == again["response_action"] == "update"
    assert direct.service.list_customers(MEMBER).total == 1


@pytest.mark.reliability("fault", "ten concurrent retries of one modal submission")
def test_concurrent_retries_of_one_submission_all_get_the_confirmation(app, direct, tried):
    direct.partner()
    barrier = threading.Barrier(10)

    def retry(i: int) -> dict:
        barrier.wait()
        headers = {"X-Slack-Retry-Num": str(i)} if i else None
        return submit(app, view_id="VRACE1", headers=headers)

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(retry, range(10)))
    tried(10)
    assert [a.get("response_action") for a in answers] == ["update"] * 10, answers
    # each one the confirmation (whether the invitation has gone out yet may differ)
    assert {a["view"]["callback_id"] for a in answers} == {"preregister_done"}
    assert all("ceo@customer.de" in body_text(a["view"]) for a in answers)
    assert direct.service.list_customers(MEMBER).total == 1


def test_hostile_name_is_stored_as_typed_and_shown_escaped(app, direct):
    direct.partner()
    body = submit(app, name="<!channel> & co")
    text = body_text(body["view"])
    assert "&lt;!channel&gt; &amp; co" in text
    assert "<!channel>" not in text
    assert direct.service.list_customers(MEMBER).items[0].full_name == "<!channel> & co"


def test_an_address_without_its_at_is_told_so(app, direct):
    """The real problem is named: a missing @, not the characters."""
    direct.partner()
    body = submit(app, email="clara.customer.de")
    assert body["response_action"] == "errors"
    assert "exactly one @" in body["errors"]["email"]
    assert direct.service.list_customers(MEMBER).total == 0
