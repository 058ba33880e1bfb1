"""`/preregister list` and its buttons end to end: pages within Block Kit limits, contact details
hidden by default (R11), delete one or several (R9), and no reach into another partner's rows."""

from __future__ import annotations

import json

import pytest

from handlers import views
from tests.blockkit import assert_valid_message
from tests.slackfixtures import MEMBER, OTHER_MEMBER, body_text, element, elements

ACK_SANITY_BOUND = 2.5


def reply_to(app, send) -> dict:  # type: ignore[no-untyped-def]
    """Runs `send()` (a command or a click) and returns the reply the person sees: the ack's
    body (commands) or the response_url post it causes (clicks)."""
    before = len(app.fake.responses)
    response = send()
    assert response.status_code == 200
    assert response.elapsed.total_seconds() < ACK_SANITY_BOUND
    message = app.seen_reply(response, before)
    assert_valid_message(message)
    return message


def listing(app, text: str = "list", user: str = MEMBER) -> dict:
    return reply_to(app, lambda: app.command(user, text))


def click(app, e: dict, user: str = MEMBER, state: dict | None = None) -> dict:
    return reply_to(
        app,
        lambda: app.block_action(
            user, e["action_id"], e.get("value"), block_id=e.get("_block_id") or "b", state=state
        ),
    )


def ticked(message: dict, ids: list[int]) -> dict:
    """The message state Slack sends when these checkboxes are ticked."""
    box = element(message, views.LIST_SELECT_ACTION)
    options = [o for o in box["options"] if int(o["value"]) in ids]
    return {
        "values": {
            box["_block_id"]: {
                views.LIST_SELECT_ACTION: {"type": "checkboxes", "selected_options": options}
            }
        }
    }


def test_130_customers_page_within_block_kit_limits(app, direct):
    direct.partner()
    first = direct.many(100)
    for p in first[:30]:
        direct.service.associate(p.id, p.email)  # frees quota; still listed
    direct.many(30, prefix="late")

    message = listing(app)
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        assert len(message["blocks"]) <= 50
        rows = [b for b in message["blocks"] if str(b.get("block_id", "")).startswith("row_")]
        assert len(rows) <= views.PAGE_SIZE
        seen += [b["block_id"] for b in rows]
        if pages > 1:
            assert message["replace_original"] is True
            element(message, f"{views.LIST_PAGE_ACTION}_prev")
        nexts = [e for e in elements(message) if e["action_id"].endswith("_next")]
        if not nexts:
            break
        message = click(app, nexts[0])
    assert pages == 13
    assert len(seen) == len(set(seen)) == 130
    assert "121–130 of 130" in message["text"]


def test_r11_contact_details_hidden_by_default_and_shown_on_request(app, direct):
    direct.partner()
    direct.prereg("ceo@customer.de", mobile="+49 1512 3456789")

    hidden = listing(app)
    assert "ceo@customer.de" not in body_text(hidden)
    assert "3456789" not in body_text(hidden)
    assert "c••@customer.de" in body_text(hidden)

    shown = click(app, element(hidden, views.LIST_TOGGLE_ACTION))
    assert shown["replace_original"] is True
    assert "ceo@customer.de" in body_text(shown)
    assert "+4915123456789" in body_text(shown)

    again = click(app, element(shown, views.LIST_TOGGLE_ACTION))
    assert "ceo@customer.de" not in body_text(again)


def test_r9_delete_one_from_the_list(app, direct):
    direct.partner()
    keep = direct.prereg("keep@customer.de")
    drop = direct.prereg("drop@customer.de")
    message = listing(app)
    button = next(
        e
        for e in elements(message)
        if e["action_id"] == views.LIST_DELETE_ACTION and json.loads(e["value"])["id"] == drop.id
    )
    assert button["confirm"]["style"] == "danger"
    after = click(app, button)
    assert "drop@customer.de deleted" in body_text(after)
    assert direct.status(drop.id) == "deleted"
    assert direct.status(keep.id) == "preregistered"
    assert f"row_{drop.id}" not in body_text(after)


def test_r9_delete_selected_refuses_under_review_and_associated(app, direct):
    direct.partner()
    plain = direct.prereg("plain@customer.de")
    review = direct.prereg("fr@customer.fr", mobile="+33 6 12 34 56 78")
    joined = direct.prereg("joined@customer.de")
    direct.service.associate(joined.id, joined.email)
    message = listing(app)
    ids = [plain.id, review.id, joined.id]
    after = click(
        app, element(message, views.LIST_DELETE_SELECTED_ACTION), state=ticked(message, ids)
    )
    text = body_text(after)
    assert "plain@customer.de deleted" in text
    assert "fr@customer.fr is Under review" in text
    assert "joined@customer.de is Associated" in text
    assert [direct.status(i) for i in ids] == ["deleted", "under_review", "associated"]


def test_delete_selected_with_nothing_ticked_changes_nothing(app, direct):
    direct.partner()
    p = direct.prereg("plain@customer.de")
    message = listing(app)
    after = click(app, element(message, views.LIST_DELETE_SELECTED_ACTION), state={"values": {}})
    assert "Tick the customers" in body_text(after)
    assert direct.status(p.id) == "preregistered"


@pytest.mark.reliability("attack", "partner deletes another partner's customer (crafted values)")
def test_crafted_values_cannot_reach_another_partners_customers(app, direct, tried):
    tried(2)
    direct.partner()
    direct.partner("Rival AG", member=OTHER_MEMBER)
    direct.prereg("mine@customer.de")
    theirs = direct.prereg("theirs@customer.de", user=OTHER_MEMBER)
    message = listing(app)

    forged = {"action_id": views.LIST_DELETE_ACTION, "value": json.dumps({"id": theirs.id})}
    after = click(app, forged)
    assert f"No customer {theirs.id} among your" in body_text(after)

    box = element(message, views.LIST_SELECT_ACTION)
    state = {
        "values": {
            box["_block_id"]: {
                views.LIST_SELECT_ACTION: {
                    "type": "checkboxes",
                    "selected_options": [{"value": str(theirs.id)}],
                }
            }
        }
    }
    click(app, element(message, views.LIST_DELETE_SELECTED_ACTION), state=state)
    assert direct.status(theirs.id) == "preregistered"
    # the list drawn for this member never contains the other partner's customer
    assert "theirs" not in body_text(listing(app, "list all"))


@pytest.mark.reliability("attack", "crafted list state (show contacts, pages) stays in own rows")
def test_stranger_clicking_a_list_button_is_told_and_nothing_changes(app, direct, tried):
    tried(1)
    direct.partner()
    p = direct.prereg("mine@customer.de")
    message = listing(app)
    delete = element(message, views.LIST_DELETE_ACTION)
    after = click(app, delete, user="USTRANGER")
    assert "not set up as a member" in after["text"]
    assert direct.status(p.id) == "preregistered"


def test_send_invitation_button_only_for_customers_not_invited(app, direct):
    direct.partner()
    later = direct.prereg("later@customer.de", send=False)
    message = listing(app)
    invite = element(message, views.SEND_INVITATION_ACTION)
    assert invite["value"] == str(later.id)
    direct.service.mark_invited(later.id)
    assert not [e for e in elements(listing(app)) if e["action_id"] == views.SEND_INVITATION_ACTION]


def test_list_by_status_filters(app, direct):
    direct.partner()
    direct.prereg("plain@customer.de")
    direct.prereg("fr@customer.fr", mobile="+33 6 12 34 56 78")
    message = listing(app, "list under review")
    assert "1–1 of 1" in body_text(message)
    assert "Under review" in body_text(message)
    empty = listing(app, "list rejected")
    assert "No customers" in empty["text"]
