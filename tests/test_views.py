"""The pure Block Kit builders, each checked against Block Kit's limits with slack-sdk."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.models import DeleteResult, Eligibility, Page, PartnerSummary, PartnerView, PreregView
from handlers import views
from tests.blockkit import assert_valid_message, assert_valid_view
from tests.conftest import T0

HOSTILE_NAMES = ("<!channel>", "<https://evil.example|click>", "A & B <@U123>")
CONTACTS = [("UMANAGER1", "eco@vendor.example")]


def prereg(pid: int = 1, **changes: object) -> PreregView:
    base = PreregView(
        id=pid,
        partner_id=1,
        partner_name="Acme GmbH",
        full_name="Clara Customer",
        email="ceo@customer.de",
        mobile="+4915123456789",
        send_invitation=True,
        association_type="reseller",
        status="preregistered",
        customer_country="DE",
        partner_country="DE",
        review_reason=None,
        submitted_by="UMEMBER1",
        submitted_at=T0,
        review_due_at=None,
        decided_at=None,
        decided_by=None,
        decision_reason=None,
        expires_at=T0 + timedelta(days=15),
        associated_at=None,
        deleted_at=None,
        invited_at=None,
        review_channel_id=None,
        review_message_ts=None,
    )
    return replace(base, **changes)


def under_review(pid: int = 1, **changes: object) -> PreregView:
    review = {
        "status": "under_review",
        "customer_country": "FR",
        "review_reason": "The customer's country (FR) differs from the partner's business "
        "country (DE).",
        "review_due_at": T0 + timedelta(days=2),
        "expires_at": None,
    }
    return prereg(pid, **{**review, **changes})


def all_text(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


def texts(obj: object, kind: str = "mrkdwn") -> list[str]:
    """Every text of that kind anywhere in the structure; for mrkdwn also the message's
    notification `text` (Slack renders it as mrkdwn too)."""
    found: list[str] = []
    if isinstance(obj, dict):
        of_kind = obj.get("type") == kind
        notification = kind == "mrkdwn" and "blocks" in obj
        if (of_kind or notification) and isinstance(obj.get("text"), str):
            found.append(obj["text"])
        for value in obj.values():
            found.extend(texts(value, kind))
    elif isinstance(obj, list):
        for item in obj:
            found.extend(texts(item, kind))
    return found


def test_r7_modal_has_the_four_fields_and_a_short_title():
    view = views.preregistration_modal()
    assert_valid_view(view)
    assert len(view["title"]["text"]) <= 24
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert [b["block_id"] for b in inputs] == list(views.FIELD_BLOCKS)
    radio = inputs[-1]["element"]
    assert radio["type"] == "radio_buttons"
    assert [o["value"] for o in radio["options"]] == ["yes", "no"]


@pytest.mark.parametrize(
    "p, expected",
    [
        (prereg(), "invitation email is being sent"),
        (prereg(send_invitation=False), "link and QR code in a DM"),
        (under_review(), "Review due by"),
    ],
)
def test_confirmation_tells_status_and_next_step(p, expected):
    view = views.confirmation_modal(p)
    assert_valid_view(view)
    body = all_text(view)
    assert expected in body
    assert views.status_label(p.status) in body
    if p.status == "preregistered":
        assert "Valid until" in body and "8 Dec 2026" in body


def test_r11_masking_keeps_only_a_hint():
    assert views.mask_mobile("+4915123456789") == "+49 15•••••••89"
    assert views.mask_mobile("+14155552671") == "+1 41••••••71"
    assert views.mask_mobile("+8613812345678") == "+86 13•••••••78"
    assert views.mask_mobile("+390612345678") == "+39 06••••••78"
    assert views.mask_mobile("0151 2345 6789") == "01•• •••• ••89"  # not E.164: digits only
    assert views.mask_email("ceo@customer.de") == "c••@customer.de"
    assert "3456" not in views.mask_mobile("+4915123456789")


def test_r11_list_hides_contacts_unless_shown():
    page = Page([prereg(i, email=f"person{i}@customer.de") for i in range(1, 4)], 3, 0, 10)
    hidden = views.customer_list(page)
    shown = views.customer_list(page, shown=True)
    assert_valid_message(hidden)
    assert_valid_message(shown)
    assert "person1@customer.de" not in all_text(hidden)
    assert "+4915123456789" not in all_text(hidden)
    assert "p••@customer.de" in all_text(hidden)
    assert "person1@customer.de" in all_text(shown)
    assert "+4915123456789" in all_text(shown)


def test_list_page_stays_within_limits_and_offers_actions():
    items = [prereg(i) for i in range(1, 11)]
    items[0] = under_review(1)
    page = Page(items, 130, 10, 10)
    message = views.customer_list(page)
    assert_valid_message(message)
    assert len(message["blocks"]) <= 50
    action_ids = [
        e["action_id"]
        for b in message["blocks"]
        for e in ([b["accessory"]] if "accessory" in b else b.get("elements", []))
        if isinstance(e, dict) and "action_id" in e
    ]
    assert action_ids.count(views.LIST_DELETE_ACTION) == 9  # not for the one Under review
    assert action_ids.count(views.SEND_INVITATION_ACTION) == 9
    assert f"{views.LIST_PAGE_ACTION}_prev" in action_ids
    assert f"{views.LIST_PAGE_ACTION}_next" in action_ids
    assert views.LIST_DELETE_SELECTED_ACTION in action_ids
    invite = next(
        e
        for b in message["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == views.SEND_INVITATION_ACTION
    )
    assert invite["value"] == "2"


def test_empty_list_says_so():
    message = views.customer_list(Page([], 0, 0, 10))
    assert_valid_message(message)
    assert "No customers" in message["text"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_user_text_is_escaped_everywhere(name):
    p = prereg(full_name=name, decided_by="UMANAGER1", decided_at=T0, status="rejected")
    r = under_review(full_name=name, decision_reason=name)
    summary = PartnerSummary(
        partner=PartnerView(1, name, "DE", "x@y.de", None, None, None),
        quota_used=1,
        quota_limit=100,
        counts={"preregistered": 1},
        expiring_soon=[prereg(full_name=name)],
    )
    built = [
        views.customer_list(Page([prereg(full_name=name)], 1, 0, 10), shown=True),
        views.review_request_message(r),
        views.review_decided_message(replace(p, decision_reason=name)),
        views.review_outcome_dm(replace(p, decision_reason=name)),
        views.review_outcome_dm(prereg(full_name=name, decided_by="UMANAGER1")),
        views.check_message(name, Eligibility(allowed=False, message=name), CONTACTS),
        views.delete_message([DeleteResult(name, False, f"{name} is Under review")], CONTACTS),
        views.refusal_message(name, CONTACTS),
    ]
    modals = [
        views.confirmation_modal(prereg(full_name=name)),
        views.reject_modal(r, "{}"),
        views.home_view(summary, [r], CONTACTS, "CMANAGERS"),
    ]
    for message in built:
        assert_valid_message(message)
    for view in modals:
        assert_valid_view(view)
    mrkdwn = [t for obj in built + modals for t in texts(obj)]
    assert any(views.escape(name) in t for t in mrkdwn)
    for text in mrkdwn:
        assert "<!channel>" not in text
        assert "<https://evil" not in text
        assert "<@U123>" not in text
    # plain_text shows characters as typed (escaping there would show `&lt;`)
    plain = [t for obj in built + modals for t in texts(obj, "plain_text")]
    assert any(name in t for t in plain)
    assert not any("&lt;" in t for t in plain)


def test_review_request_has_facts_and_buttons():
    message = views.review_request_message(under_review(7))
    assert_valid_message(message)
    body = all_text(message)
    assert "Clara Customer" in body and "Acme GmbH" in body
    assert "(FR)" in body and "(DE)" in body
    assert "Wed 25 Nov 2026, 10:00 UTC" in body  # due time (fallback text)
    buttons = message["blocks"][-1]["elements"]
    assert [(b["action_id"], b["value"], b["style"]) for b in buttons[:2]] == [
        (views.APPROVE_ACTION, "7", "primary"),
        (views.REJECT_ACTION, "7", "danger"),
    ]
    # the desk's buttons follow (send back, take the case, reassign): none styled as decisions
    assert [b["action_id"] for b in buttons[2:]] == [
        "review_send_back",
        "review_take",
        "review_reassign",
    ]


def test_decided_message_has_no_buttons_and_names_the_decider():
    p = under_review(status="rejected", decided_by="UMANAGER1", decided_at=T0)
    message = views.review_decided_message(replace(p, decision_reason="Not our market"))
    assert_valid_message(message)
    assert not [b for b in message["blocks"] if b["type"] == "actions"]
    body = all_text(message)
    assert "Rejected* by <@UMANAGER1> at" in body
    assert "Not our market" in body


def test_r10_flow_is_a_readable_sequence():
    """R10: the flowchart is a numbered Block Kit sequence within the limits."""
    message = views.flow_message()
    assert_valid_message(message)
    steps = [b for b in message["blocks"] if b["type"] == "section"]
    assert len(steps) == len(views.FLOW_STEPS) >= 5
    body = all_text(message)
    for word in ("Preregister", "Under review", "Associated", "expires", "15 days"):
        assert word in body


def test_r13_help_lists_commands_and_the_manager_contact():
    message = views.help_message(CONTACTS)
    assert_valid_message(message)
    body = all_text(message)
    for command in ("list", "check", "delete", "notify here", "flow", "help"):
        assert f"/preregister {command}" in body
    assert "<@UMANAGER1>" in body and "eco@vendor.example" in body
    assert "No ecosystem manager" in all_text(views.help_message([]))


def test_home_views_for_partner_manager_and_stranger():
    summary = PartnerSummary(
        partner=PartnerView(1, "Acme GmbH", "DE", "x@y.de", None, None, None),
        quota_used=42,
        quota_limit=100,
        counts={"preregistered": 40, "under_review": 2},
        expiring_soon=[
            prereg(i, full_name="N" * 100, expires_at=T0 + timedelta(days=2)) for i in range(20)
        ],
    )
    queue = [under_review(i) for i in range(1, 60)]
    for view in (
        views.home_view(summary, None, CONTACTS),
        views.home_view(None, queue, CONTACTS, "CMANAGERS"),
        views.home_view(summary, queue, CONTACTS, "CMANAGERS"),
        views.home_view(None, None, []),
    ):
        assert_valid_view(view)
    assert "42 / 100" in all_text(views.home_view(summary, None, CONTACTS))
    assert "and 10 more" in all_text(views.home_view(summary, None, CONTACTS))
    assert "not set up" in all_text(views.home_view(None, None, []))


def test_error_surfaces_are_valid():
    assert_valid_message(views.error_message())
    assert_valid_view(views.error_modal())
