"""Attacks over the real HTTP paths: a partner reaching for another partner's customer through
crafted action values, list state and private_metadata; a non-manager deciding reviews;
tampered and reused invitation tokens, CSRF and script injection on the invitation page.
Each is refused, changes nothing, and leaves a record: an audit row or a line in the log."""

from __future__ import annotations

import json
import re

import pytest
import requests
from sqlalchemy import select

from bot.invitations import Invitations
from handlers import views
from store.models import AuditEvent
from tests.slackapp import INVITE_SECRET, MANAGER_CHANNEL
from tests.slackfixtures import MANAGER, MEMBER, OTHER_MEMBER, Direct, body_text

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def direct(app):
    d = Direct(app.db_url)
    d.partner()
    d.partner("Rival AG", member=OTHER_MEMBER)
    d.manager()
    yield d
    d.close()


def refusals(direct: Direct, actor: str, action: str) -> list[AuditEvent]:
    with direct.db.session() as s:
        rows = s.scalars(
            select(AuditEvent).where(AuditEvent.actor == actor, AuditEvent.action == action)
        ).all()
    return [r for r in rows if r.result.startswith("refused:")]


def reply(app, send) -> dict:  # type: ignore[no-untyped-def]
    before = len(app.fake.responses)
    return app.seen_reply(send(), before)


@pytest.mark.reliability("attack", "partner deletes another partner's customer (crafted values)")
def test_partner_cannot_delete_another_partners_customer_by_any_route(app, direct, tried):
    theirs = direct.prereg("theirs@customer.de", user=OTHER_MEMBER)
    direct.prereg("mine@customer.de")
    crafted = json.dumps({"o": 0, "f": "all", "c": True, "id": theirs.id})
    routes = [
        lambda: app.block_action(MEMBER, views.LIST_DELETE_ACTION, crafted),
        lambda: app.block_action(
            MEMBER,
            views.LIST_DELETE_SELECTED_ACTION,
            crafted,
            state={
                "values": {
                    f"{views.LIST_SELECT_BLOCK}_x": {
                        views.LIST_SELECT_ACTION: {
                            "type": "checkboxes",
                            "selected_options": [{"value": str(theirs.id)}],
                        }
                    }
                }
            },
        ),
        lambda: app.command(MEMBER, "delete theirs@customer.de"),
        lambda: app.command(MEMBER, f"delete {theirs.id}"),
    ]
    for send in routes:
        tried()
        answer = reply(app, send)
        assert "theirs@customer.de deleted" not in body_text(answer)
    assert direct.status(theirs.id) == "preregistered"
    assert len(refusals(direct, MEMBER, "delete")) == len(routes)


@pytest.mark.reliability("attack", "crafted list state (show contacts, pages) stays in own rows")
def test_crafted_list_state_never_shows_another_partners_customers(app, direct, tried):
    theirs = direct.prereg("theirs@customer.de", user=OTHER_MEMBER, mobile="+49 1512 3456780")
    direct.prereg("mine@customer.de")
    values = [
        json.dumps({"o": 0, "f": "all", "c": True, "id": theirs.id}),
        json.dumps({"o": 10**9, "f": "all", "c": True}),
        json.dumps({"o": -5, "f": "'; DROP TABLE partners; --", "c": True}),
        json.dumps([theirs.id]),
        "not json",
    ]
    for value in values:
        for action in (views.LIST_TOGGLE_ACTION, f"{views.LIST_PAGE_ACTION}_next"):
            tried()
            answer = reply(app, lambda v=value, a=action: app.block_action(MEMBER, a, v))
            text = body_text(answer)
            assert "theirs@customer.de" not in text and "3456780" not in text
            assert "mine@customer.de" in text or "m••@customer.de" in text
    tried()
    stranger = reply(
        app, lambda: app.block_action("USTRANGER", views.LIST_TOGGLE_ACTION, values[0])
    )
    assert "not set up as a member" in stranger["text"]
    assert "ignored a list button value that is not ours" in app.log()


@pytest.mark.reliability("attack", "partner sends the invitation email of another's customer")
def test_invitation_email_for_another_partners_customer_is_refused_and_audited(app, direct, tried):
    theirs = direct.prereg("theirs@customer.de", user=OTHER_MEMBER, send=False)
    for value in (str(theirs.id), str(theirs.id + 1000)):
        tried()
        answer = reply(app, lambda v=value: app.block_action(MEMBER, "send_invitation_email", v))
        assert "not among your company's preregistrations" in answer["text"]
    assert len(refusals(direct, MEMBER, "request_invitation")) == 2
    app.sweep()
    assert app.smtp.mailbox.messages == []


@pytest.mark.reliability("attack", "non-manager approves or rejects (buttons, crafted reason view)")
def test_non_manager_decisions_are_refused_and_audited(app, direct, tried):
    review = direct.prereg("client@customer.fr", mobile="+33 6 12 34 56 78")
    assert review.status == "under_review"
    for action in (views.APPROVE_ACTION, views.REJECT_ACTION):
        for user in (MEMBER, OTHER_MEMBER, "USTRANGER"):
            tried()
            answer = reply(
                app,
                lambda a=action, u=user: app.block_action(
                    u, a, str(review.id), channel=MANAGER_CHANNEL
                ),
            )
            assert "Only ecosystem managers" in answer["text"]
    values = {"reason": {views.VALUE_ACTION: {"type": "plain_text_input", "value": "no"}}}
    for meta in (json.dumps({"id": review.id}), json.dumps({"id": review.id, "as": MANAGER})):
        tried()
        response = app.view_submission(MEMBER, views.REJECT_CALLBACK, values, private_metadata=meta)
        assert "Only ecosystem managers" in response.json()["errors"]["reason"]
    assert direct.status(review.id) == "under_review"
    assert app.fake.calls_to("views.open") == []
    audited = refusals(direct, MEMBER, "approve") + refusals(direct, MEMBER, "reject")
    assert len(audited) == 2 + 2  # one click of each, plus the two crafted submissions
    assert all(r.result == "refused:not_a_manager" for r in audited)
    assert len(refusals(direct, "USTRANGER", "approve") + refusals(direct, "USTRANGER", "reject"))


FORGED_IDS = ("²", "١٢", "9" * 30, str(2**31), str(2**63), "-1", "0", " 7", "1e3", "0x1f")


def _tick(value: str) -> dict:
    option = {"selected_options": [{"value": value}], "type": "checkboxes"}
    return {"values": {f"{views.LIST_SELECT_BLOCK}_x": {views.LIST_SELECT_ACTION: option}}}


@pytest.mark.reliability("attack", "forged but signed button ids (non-ASCII digits, huge numbers)")
def test_forged_button_ids_are_refused_cleanly_and_change_nothing(app, direct, tried):
    mine = direct.prereg("mine@customer.de", send=False)
    review = direct.prereg("client@customer.fr", mobile="+33 6 12 34 56 78")
    big_ids = (10**30, 2**31, 2**63, -1, 0)
    routes = [
        *(
            lambda v=state, a=a: app.block_action(MEMBER, a, v)
            for state in (json.dumps({"o": 0, "f": "all", "c": True, "id": i}) for i in big_ids)
            for a in (views.LIST_DELETE_ACTION, views.LIST_TOGGLE_ACTION)
        ),
        *(
            lambda v=v: app.block_action(
                MEMBER, views.LIST_DELETE_SELECTED_ACTION, "{}", state=_tick(v)
            )
            for v in FORGED_IDS
        ),
        *(lambda v=v: app.block_action(MEMBER, "send_invitation_email", v) for v in FORGED_IDS),
        *(
            lambda v=v, a=a: app.block_action(MANAGER, a, v, channel=MANAGER_CHANNEL)
            for v in FORGED_IDS
            for a in (views.APPROVE_ACTION, views.REJECT_ACTION)
        ),
    ]
    failed = []
    for n, send in enumerate(routes):
        tried()
        if "Something went wrong" in json.dumps(reply(app, send)):
            failed.append(n)
    assert failed == [], f"routes {failed} of {len(routes)} answered with an error"
    values = {"reason": {views.VALUE_ACTION: {"type": "plain_text_input", "value": "no"}}}
    for forged in big_ids:
        tried()
        meta = json.dumps({"id": forged})
        response = app.view_submission(
            MANAGER, views.REJECT_CALLBACK, values, private_metadata=meta
        )
        assert response.status_code == 200
        assert "errors" in response.json(), response.json()
    assert direct.status(mine.id) == "preregistered"
    assert direct.status(review.id) == "under_review"
    assert app.fake.calls_to("views.open") == []


# --- the invitation page ------------------------------------------------------------------------


def invitation_link(app, direct: Direct, view) -> str:  # type: ignore[no-untyped-def]
    return Invitations(direct.service, INVITE_SECRET, app.base_url).link_for(view)


def csrf_of(page: requests.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


@pytest.mark.reliability("attack", "tampered, forged or reused invitation tokens")
def test_tampered_and_reused_tokens_are_refused_and_logged(app, direct, tried):
    view = direct.prereg("ceo@customer.de")
    link = invitation_link(app, direct, view)
    token = link.rsplit("/", 1)[1]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token[:-1], token + "x", "A" * 60, "../../etc/passwd"):
        tried()
        page = requests.get(f"{app.base_url}/invite/{bad}", timeout=10)
        assert page.status_code in (400, 404)
        posted = requests.post(f"{app.base_url}/invite/{bad}", data={"email": view.email})
        assert posted.status_code in (400, 404)
    http = requests.Session()
    csrf = csrf_of(http.get(link, timeout=10))
    assert http.post(link, data={"email": view.email, "csrf": csrf}, timeout=10).ok
    tried()
    reused = http.post(link, data={"email": view.email, "csrf": csrf}, timeout=10)
    assert reused.status_code == 410
    log = app.log()
    assert "invitation page refused GET" in log and ": forged, from" in log
    assert f"(preregistration {view.id}): used" in log
    assert direct.status(view.id) == "associated"


@pytest.mark.reliability("attack", "cross-site request forgery on the invitation form")
def test_cross_site_form_posts_are_refused_and_logged(app, direct, tried):
    view = direct.prereg("ceo@customer.de")
    link = invitation_link(app, direct, view)
    http = requests.Session()
    csrf = csrf_of(http.get(link, timeout=10))
    forged = [
        (requests.Session(), {"email": view.email, "csrf": csrf}),  # another site: no cookie
        (http, {"email": view.email}),
        (http, {"email": view.email, "csrf": csrf.split(".")[0] + ".forged"}),
    ]
    for session, data in forged:
        tried()
        page = session.post(link, data=data, headers={"Origin": "https://evil.example"})
        assert page.status_code == 400
    assert direct.status(view.id) == "preregistered"
    assert f"(preregistration {view.id}): form_expired" in app.log()


@pytest.mark.reliability("attack", "script injection on the invitation page and email")
def test_script_in_names_comes_out_escaped_under_a_strict_csp(app, direct, tried):
    direct.admin.add_partner(f"{SCRIPT} GmbH", "DE", ["USCRIPT"], contact_email="d@x.example")
    view = direct.prereg("ceo@customer.de", user="USCRIPT", name=f"Eve {SCRIPT}", send=True)
    link = invitation_link(app, direct, view)
    http = requests.Session()
    page = http.get(link, timeout=10)
    tried()
    assert "<script" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; GmbH" in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    tried()
    echoed = http.post(link, data={"email": f'"><{SCRIPT[1:]}', "csrf": csrf_of(page)}, timeout=10)
    assert echoed.status_code == 422
    assert "<script" not in echoed.text and "&lt;script&gt;" in echoed.text
    tried()
    app.sweep()
    (mail,) = app.smtp.mailbox.wait_for(1)
    html = mail.message.get_body(("html",)).get_content()
    assert "<script" not in html and "&lt;script&gt;" in html
