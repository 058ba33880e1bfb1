"""The invitation page and email in the customer's language, end to end: a running
`prereg-bot serve` over HTTP with the browser's Accept-Language, the language switch, and the
invitation email through a real SMTP server in the partner's language (issue 19)."""

from __future__ import annotations

import re
from html import unescape

import pytest
import requests

from bot.admin import Admin
from bot.clock import SystemClock
from bot.invitations import MAX_FAILED_ATTEMPTS, Invitations
from bot.service import PreregistrationService
from store.db import Database
from tests.helpers import form
from tests.slackapp import INVITE_SECRET
from tests.test_i18n import english_words_in_html, english_words_in_text, visible_html
from tests.test_invite_pages import ACME, BETA, World, outcome

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"Accept-Language": "en"}
CHINESE = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def world(app):
    """Two partners (the same as tests/test_invite_pages.py) and their invitations."""
    db = Database(app.db_url)
    clock = SystemClock()
    admin = Admin(db, clock)
    admin.add_partner("Acme & Söhne", "DE", [ACME], contact_email="desk@acme.example")
    admin.add_partner("Beta AG", "DE", [BETA], contact_email="desk@beta.example")
    service = PreregistrationService(db, clock)
    yield World(service, Invitations(service, INVITE_SECRET, app.base_url))
    db.dispose()


def html_lang(page: requests.Response) -> str:
    match = re.search(r'<html lang="([^"]+)">', page.text)
    assert match, page.text[:200]
    return match.group(1)


def assert_chinese(page: requests.Response) -> None:
    assert html_lang(page) == "zh-CN"
    assert page.headers["Content-Language"] == "zh-CN"
    assert english_words_in_html(page.text) == [], visible_html(page.text)


def form_fields(page: requests.Response) -> tuple[str, dict[str, str]]:
    """The form's action and its fields, as a browser would send them."""
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action, page.text
    fields = dict(re.findall(r'<input type="hidden" name="([a-z]+)" value="([^"]*)"', page.text))
    return unescape(action.group(1)), fields


def switch_link(page: requests.Response, lang: str) -> str:
    match = re.search(rf'<a href="([^"]+)" hreflang="{lang}"[^>]*>', page.text)
    assert match, page.text
    return unescape(match.group(1))


def test_the_page_follows_the_browsers_language(app, world):
    view = world.preregister()
    link = world.link(view)
    zh = requests.get(link, headers=ZH, timeout=10)
    assert zh.status_code == 200 and outcome(zh) == "valid"
    assert_chinese(zh)
    assert "Acme &amp; Söhne 邀请您成为其客户" in zh.text
    assert "Accept-Language" in zh.headers["Vary"]
    en = requests.get(link, headers=EN, timeout=10)
    assert html_lang(en) == "en"
    assert "Acme &amp; Söhne invites you to become its customer" in en.text
    assert not CHINESE.search(visible_html(en.text).replace("简体中文", ""))
    # no preference at all: English; an unknown choice falls back to the browser's, unechoed
    assert html_lang(requests.get(link, timeout=10)) == "en"
    odd = requests.get(link, params={"lang": 'fr"><b>'}, headers=ZH, timeout=10)
    assert html_lang(odd) == "zh-CN" and "<b>" not in odd.text


def test_the_switch_keeps_the_token_and_the_choice_survives_the_post(app, world):
    view = world.preregister()
    link = world.link(view)
    browser = requests.Session()
    browser.headers.update(EN)  # the browser keeps asking for English
    english = browser.get(link, timeout=10)
    to_chinese = switch_link(english, "zh")
    assert to_chinese.startswith(link.removeprefix(app.base_url)) and "lang=zh" in to_chinese
    chinese = browser.get(app.base_url + to_chinese, timeout=10)
    assert_chinese(chinese)
    assert switch_link(chinese, "en").endswith("lang=en")

    action, fields = form_fields(chinese)
    wrong = browser.post(app.base_url + action, data={**fields, "email": "x@y.de"}, timeout=10)
    assert wrong.status_code == 422 and outcome(wrong) == "mismatch"
    assert_chinese(wrong)
    assert "还可尝试 4 次" in wrong.text

    action, fields = form_fields(wrong)
    done = browser.post(app.base_url + action, data={**fields, "email": view.email}, timeout=10)
    assert done.status_code == 200 and outcome(done) == "associated"
    assert done.history and "lang=zh" in done.url  # the success page after the redirect
    assert_chinese(done)
    assert "您现在是 Acme &amp; Söhne 的客户" in done.text
    # used link, opened again by the Chinese browser: the error page is Chinese too
    again = requests.get(link, headers=ZH, timeout=10)
    assert again.status_code == 410 and outcome(again) == "used"
    assert_chinese(again)


def test_error_and_this_wasnt_me_pages_in_chinese(app, world):
    view = world.preregister()
    link = world.link(view)
    forged = requests.get(link[:-3] + "AAA", headers=ZH, timeout=10)
    assert forged.status_code == 400 and outcome(forged) == "forged"
    assert_chinese(forged)

    browser = requests.Session()
    browser.headers.update(ZH)
    confirm = browser.get(link + "/not-me", timeout=10)
    assert confirm.status_code == 200 and outcome(confirm) == "decline"
    assert_chinese(confirm)
    action, fields = form_fields(confirm)
    withdrawn = browser.post(app.base_url + action, data=fields, timeout=10)
    assert withdrawn.status_code == 200 and outcome(withdrawn) == "declined"
    assert_chinese(withdrawn)
    gone = browser.get(link, timeout=10)
    assert gone.status_code == 410
    assert_chinese(gone)


def test_the_lock_out_time_is_written_the_chinese_way(app, world):
    view = world.preregister()
    link = world.link(view)
    browser = requests.Session()
    browser.headers.update(ZH)
    for _attempt in range(MAX_FAILED_ATTEMPTS):
        action, fields = form_fields(browser.get(link, timeout=10))
        page = browser.post(app.base_url + action, data={**fields, "email": "x@y.de"}, timeout=10)
    assert page.status_code == 429 and outcome(page) == "locked"
    assert_chinese(page)
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d UTC", visible_html(page.text))


def test_the_invitation_email_is_in_the_partners_language(app, world):
    assert "简体中文" in app.ask(ACME, "language zh")["text"]
    chinese_view = world.service.preregister(ACME, form(name="王芳", send=True)).preregistration
    english_view = world.service.preregister(
        BETA, form(email="cfo@other.de", name="Carl Kunde", send=True)
    ).preregistration
    app.sweep()
    received = {r.rcpt_tos[0]: r.message for r in app.smtp.mailbox.wait_for(2, timeout=15)}

    zh = received[chinese_view.email]
    assert zh["Subject"] == "Acme & Söhne 邀请您成为其客户"
    plain = zh.get_body(("plain",)).get_content()
    html = zh.get_body(("html",)).get_content()
    assert '<html lang="zh-CN">' in html
    assert world.link(chinese_view) in plain and world.link(chinese_view) in html
    assert "王芳，您好：" in plain
    assert english_words_in_text(plain) == [], plain
    assert english_words_in_html(html) == [], visible_html(html)
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", plain)

    en = received[english_view.email]
    assert en["Subject"] == "Beta AG invites you to become its customer"
    assert '<html lang="en">' in en.get_body(("html",)).get_content()
    assert "Hello Carl Kunde" in en.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/invite/", 404), ("GET", "/invite/T0K/not-me/extra", 404),
     ("PUT", "/invite/T0K", 405), ("DELETE", "/invite/T0K/accepted", 405)],
)  # fmt: skip
def test_a_mangled_invitation_address_answers_in_the_readers_language(app, method, path, status):
    """Not Flask's English "Not Found": the page for a link copied incompletely, with the
    language switch and the page's security headers."""
    page = requests.request(method, app.base_url + path, headers=ZH, timeout=10)
    assert page.status_code == status
    assert_chinese(page)
    assert "此邀请链接无效" in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    if status == 405:
        assert "GET" in page.headers["Allow"]
    english = requests.request(method, app.base_url + path, headers=EN, timeout=10)
    assert english.status_code == status and html_lang(english) == "en"
    assert "This invitation link is not valid" in english.text


def test_other_addresses_keep_flasks_answer(app):
    page = requests.get(app.base_url + "/no-such-page", headers=ZH, timeout=10)
    assert page.status_code == 404 and "Content-Language" not in page.headers
