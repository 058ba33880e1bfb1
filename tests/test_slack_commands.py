"""`/preregister` end to end: signed slash commands over HTTP, replies read off the fake Slack."""

from __future__ import annotations

import time

import pytest

from tests.blockkit import assert_valid_message, assert_valid_view
from tests.helpers import directory_row
from tests.slackfixtures import MANAGER, MANAGER_EMAIL, MEMBER, OTHER_MEMBER, body_text

ACK_SANITY_BOUND = 2.5  # seconds; a sanity bound, not a latency measurement


def command(app, text: str = "", user: str = MEMBER, channel: str = "CGENERAL") -> dict:
    """Sends the command and returns the reply the person sees: the ack's body for
    `/preregister <word>`, the post to its response_url for the form's refusals."""
    before = len(app.fake.responses)
    response = app.command(user, text, channel=channel)
    assert response.status_code == 200, (response.elapsed, app.log())
    assert response.elapsed.total_seconds() < ACK_SANITY_BOUND
    reply = app.seen_reply(response, before)
    assert reply.get("response_type") == "ephemeral"
    assert_valid_message(reply)
    return reply


def test_preregister_without_text_opens_the_modal(app, direct):
    direct.partner()
    response = app.command(MEMBER, "")
    assert response.status_code == 200
    assert response.elapsed.total_seconds() < ACK_SANITY_BOUND
    call = app.fake.wait_for("views.open")[0]
    assert call.args["trigger_id"].startswith("trigger.")
    view = call.json_arg("view")
    assert_valid_view(view)
    assert view["callback_id"] == "preregister"
    assert app.fake.responses == []


def test_r1_partner_without_reserved_contact_gets_no_modal(app, direct):
    direct.partner(contact=False)
    direct.manager()
    reply = command(app, "")
    assert "reserved contact" in reply["text"]
    assert MANAGER_EMAIL in body_text(reply)  # R13: who to ask
    assert app.fake.calls_to("views.open") == []


def test_stranger_is_told_to_ask_without_a_modal(app):
    reply = command(app, "", user="USTRANGER")
    assert "not set up as a member" in reply["text"]
    assert app.fake.calls_to("views.open") == []


def test_unknown_subcommand_gets_the_help_text(app):
    reply = command(app, "frobnicate <!channel>")
    body = body_text(reply)
    assert "I don't know `frobnicate`" in body
    assert "/preregister list" in body


def test_r13_help_shows_commands_rules_and_the_manager_contact(app, direct):
    direct.manager()
    reply = command(app, "help", user="USTRANGER")
    body = body_text(reply)
    for sub in ("list", "check", "delete", "notify here", "flow"):
        assert f"/preregister {sub}" in body
    assert "15 days" in body and "100" in body
    assert f"<@{MANAGER}>" in body and MANAGER_EMAIL in body


def test_r10_flow_shows_the_customer_development_steps(app):
    """R10: the customer-development flowchart, on request."""
    reply = command(app, "flow")
    sections = [b["text"]["text"] for b in reply["blocks"] if b["type"] == "section"]
    assert len(sections) >= 5
    order = ["Check", "Preregister", "Same country", "Invite", "Customer accepts"]
    positions = [next(i for i, s in enumerate(sections) if word in s) for word in order]
    assert positions == sorted(positions)


def test_check_answers_without_claiming(app, direct):
    direct.partner()
    direct.partner("Rival AG", member=OTHER_MEMBER)
    direct.directory(
        directory_row("cn@customer.de", china_mainland=True),
        directory_row("paris@customer.fr", country="FR"),
    )
    direct.prereg("held@customer.de", user=OTHER_MEMBER)

    free = command(app, "check free@customer.de")
    assert "is free: you can preregister" in free["text"]
    abroad = command(app, "check paris@customer.fr")
    assert ":white_check_mark:" not in abroad["text"]
    assert "would go to review" in abroad["text"]
    assert "in FR" in abroad["text"] and "business country is DE" in abroad["text"]
    held = command(app, "check held@customer.de")
    assert "preregistered by another partner" in held["text"]
    china = command(app, "check cn@customer.de")
    assert "China-mainland" in china["text"]
    bad = command(app, "check not-an-email")
    assert "email address" in bad["text"]
    assert direct.service.list_customers(MEMBER).total == 0


def test_r9_delete_by_email_and_refusal_for_under_review(app, direct):
    direct.partner()
    kept = direct.prereg("fr@customer.fr", mobile="+33 6 12 34 56 78")
    gone = direct.prereg("ceo@customer.de")
    assert kept.status == "under_review"

    reply = command(app, "delete ceo@customer.de fr@customer.fr nobody@customer.de")
    body = body_text(reply)
    assert "ceo@customer.de deleted" in body
    assert "Under review" in body and "cannot be deleted" in body
    assert "No customer nobody@customer.de" in body
    assert direct.status(gone.id) == "deleted"
    assert direct.status(kept.id) == "under_review"


def test_delete_cannot_touch_another_partners_customer(app, direct):
    direct.partner()
    direct.partner("Rival AG", member=OTHER_MEMBER)
    theirs = direct.prereg("theirs@customer.de", user=OTHER_MEMBER)
    reply = command(app, "delete theirs@customer.de")
    assert "No customer theirs@customer.de among your" in reply["text"]
    assert direct.status(theirs.id) == "preregistered"


def test_notify_and_digest_here_set_the_partners_channels(app, direct):
    partner_id = direct.partner()
    assert "now go to <#CDEALS>" in command(app, "notify here", channel="CDEALS")["text"]
    assert "now go to <#CDIGEST>" in command(app, "digest here", channel="CDIGEST")["text"]
    view = direct.service.partner_of(MEMBER)
    assert (view.id, view.notice_channel_id, view.digest_channel_id) == (
        partner_id,
        "CDEALS",
        "CDIGEST",
    )
    assert "no longer go to a channel" in command(app, "digest off")["text"]
    assert direct.service.partner_of(MEMBER).digest_channel_id is None
    assert "Usage" in command(app, "notify somewhere")["text"]


def test_list_with_unknown_status_names_the_known_ones(app, direct):
    direct.partner()
    reply = command(app, "list <!channel>")
    assert "&lt;!channel&gt;" in reply["text"]
    assert "`under_review`" in reply["text"]


@pytest.mark.reliability("fault", "Slack refuses views.open on /preregister")
def test_unexpected_failure_is_told_briefly_without_a_stack_trace(app, direct, tried):
    tried(1)
    direct.partner()
    app.fake.fail("views.open", status=400)
    reply = command(app, "")
    assert reply["text"].startswith(":warning: Something went wrong on our side.")
    assert "Traceback" not in body_text(reply) and "SlackApiError" not in body_text(reply)
    assert "unhandled error in a slash_command" in app.log()


def test_replies_to_response_url_reuse_one_kept_alive_connection(app):
    """Bolt's `respond` opens a new connection to Slack for every reply (urllib); the app's
    replies go over the kept-alive connections its Web API client uses (docs/performance.md)."""
    command(app, "help")  # a connection to the response_url host is open now
    before = app.fake.connections
    for _ in range(5):
        assert "/preregister list" in body_text(command(app, "help"))
    assert app.fake.connections - before <= 1  # one if the worker opened one meanwhile


def test_list_and_check_are_answered_in_the_ack_and_not_posted_again(app, direct):
    """Slack shows an ack's body as the reply: an answer ready in time goes there, once."""
    direct.partner()
    direct.prereg("anna@customer.de")
    before = len(app.fake.responses)
    for text, expected in (("list", "1–1 of 1"), ("check anna@customer.de", "anna@customer.de")):
        response = app.command(MEMBER, text)
        assert response.status_code == 200
        message = response.json()
        assert message["response_type"] == "ephemeral"
        assert_valid_message(message)
        assert expected in body_text(message)
    time.sleep(0.3)
    assert len(app.fake.responses) == before
