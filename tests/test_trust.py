"""The customer's side, tried as the customer meets it (issue 18): the invitation email from a
real SMTP server and the invitation pages over HTTP from a running `prereg-bot serve` say
which vendor this is, why it came, how to check it, whom to ask and how to say "this wasn't
me"; accepting ends in one success page."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

import pytest
import requests
from sqlalchemy import select

from bot.admin import Admin
from bot.clock import SystemClock
from bot.invitations import Invitations
from bot.service import PreregistrationService
from store.db import Database
from store.models import AuditEvent
from tests.helpers import form
from tests.slackapp import INVITE_SECRET

ACME = "UACME1"
BETA = "UBETA1"
VENDOR = "Nimbus Cloud"
PROGRAM = "Partner Network"
SUPPORT_URL = "https://nimbus.example/partner-help"
SUPPORT_EMAIL = "partner-help@nimbus.example"
LOGO = "https://cdn.nimbus.example/logo.png"


class World:
    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.db = Database(app.db_url)
        clock = SystemClock()
        admin = Admin(self.db, clock)
        admin.add_partner("Acme GmbH", "DE", [ACME], contact_email="desk@acme.example")
        admin.add_partner("Beta AG", "DE", [BETA], contact_email="desk@beta.example")
        self.service = PreregistrationService(self.db, clock)
        self.invitations = Invitations(self.service, INVITE_SECRET, app.base_url)

    def preregister(self, send: bool = False, email: str = "ceo@customer.de", user: str = ACME):
        return self.service.preregister(user, form(email=email, send=send)).preregistration

    def link(self, view) -> str:  # type: ignore[no-untyped-def]
        return self.invitations.link_for(view)

    def audit(self, action: str) -> list[AuditEvent]:
        with self.db.session() as s:
            rows = s.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
            s.expunge_all()
            return list(rows)


@pytest.fixture
def world(app):
    w = World(app)
    yield w
    w.db.dispose()


def outcome(page: requests.Response) -> str:
    match = re.search(r'data-outcome="([a-z_]+)"', page.text)
    assert match, page.text
    return match.group(1)


def csrf_of(page: requests.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


class Html(HTMLParser):
    """Collects what a basic accessibility check looks at."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.images: list[dict[str, str | None]] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.lang = found.get("lang")
        if tag == "img":
            self.images.append(found)
        if found.get("style"):
            self.styles.append(found["style"] or "")


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(fg: str, bg: str) -> float:
    light, dark = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def accessibility_problems(html: str) -> list[str]:
    """lang on <html>, alt text on every image, text colours readable (WCAG AA 4.5:1) on the
    white card, and the button's text on its own background."""
    parsed = Html()
    parsed.feed(html)
    problems = []
    if not parsed.lang:
        problems.append("no lang attribute")
    problems += [f"image without alt: {i.get('src')}" for i in parsed.images if not i.get("alt")]
    for style in parsed.styles:
        fg = re.search(r"(?:^|;)\s*color:\s*#([0-9a-fA-F]{6})", style)
        bg = re.search(r"background:\s*#([0-9a-fA-F]{6})", style)
        if fg and contrast(fg.group(1), bg.group(1) if bg else "ffffff") < 4.5:
            problems.append(f"low contrast: {style}")
    return problems


# --- the email -----------------------------------------------------------------------------


@pytest.mark.reliability("bad input", "invitation email that could pass for phishing")
def test_invitation_email_says_who_sends_it_and_how_to_check(app, world, tried):
    tried(1)
    view = world.preregister(send=True)
    link = world.link(view)
    app.sweep()
    (received,) = app.smtp.mailbox.wait_for(1)
    message = received.message

    assert re.fullmatch(r"<[^<>@\s]+@vendor\.example>", message["Message-ID"])
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Reply-To"] == "desk@acme.example"  # the partner's reserved contact (R1)
    assert VENDOR in message["From"] and "prereg-bot@vendor.example" in message["From"]

    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for text in (plain, html):
        assert VENDOR in text and PROGRAM in text
        assert SUPPORT_URL in text and SUPPORT_EMAIL in text
        assert "Why you got this" in text
        assert "Is it genuine?" in text and "/invite/" in text
        assert f"{link}/not-me" in text  # "this wasn't me": a confirmation page
    assert f'src="{LOGO}"' in html
    assert accessibility_problems(html) == []


# --- the pages -----------------------------------------------------------------------------


@pytest.mark.reliability("bad input", "invitation page that could pass for phishing")
def test_invitation_page_names_the_vendor_and_whom_to_ask(app, world, tried):
    tried(3)
    view = world.preregister()
    link = world.link(view)
    page = requests.get(link, timeout=10)
    assert page.status_code == 200
    for text in (VENDOR, PROGRAM, SUPPORT_URL, SUPPORT_EMAIL, "Why you got this"):
        assert text in page.text
    assert f"{link.removeprefix(app.base_url)}/not-me" in page.text
    assert f'<img class="logo" src="{LOGO}" alt="{VENDOR} logo"' in page.text
    assert "https://cdn.nimbus.example" in page.headers["Content-Security-Policy"]
    assert accessibility_problems(page.text) == []

    world.service.delete(ACME, [view.id])
    for url in (link, f"{app.base_url}/invite/not-a-token"):
        error = requests.get(url, timeout=10)
        assert error.status_code >= 400
        assert 'data-contact="help"' in error.text
        assert SUPPORT_EMAIL in error.text and SUPPORT_URL in error.text
    assert "desk@acme.example" in requests.get(link, timeout=10).text


def test_accepting_ends_in_one_success_page(app, world):
    view = world.preregister()
    link = world.link(view)
    http = requests.Session()
    csrf = csrf_of(http.get(link, timeout=10))
    posted = http.post(link, data={"email": view.email, "csrf": csrf}, allow_redirects=False)
    assert posted.status_code == 303  # POST/redirect/GET
    success_url = requests.compat.urljoin(link, posted.headers["Location"])
    for _ in range(2):  # a reload shows the same success, not "already accepted"
        page = http.get(success_url, timeout=10)
        assert page.status_code == 200
        assert outcome(page) == "associated"
        assert 'role="alert"' not in page.text
        assert "already been accepted" not in page.text
    assert world.service.view(view.id).status == "associated"


@pytest.mark.reliability("attack", "'this wasn't me' without the page's CSRF token")
def test_this_wasnt_me_withdraws_only_after_confirming(app, world, tried):
    tried(4)
    view = world.preregister()
    link = world.link(view)
    not_me = f"{link}/not-me"
    http = requests.Session()

    confirm = http.get(not_me, timeout=10)  # the email's link changes nothing by itself
    assert confirm.status_code == 200
    assert outcome(confirm) == "decline"
    assert world.service.view(view.id).status == "preregistered"

    accept_csrf = csrf_of(http.get(link, timeout=10))
    for session, data in (
        (http, {}),  # no field
        (http, {"csrf": accept_csrf}),  # the acceptance form's field
        (requests.Session(), {"csrf": csrf_of(confirm)}),  # no cookie: another site
    ):
        assert session.post(not_me, data=data, timeout=10).status_code == 400
    assert world.service.view(view.id).status == "preregistered"

    done = http.post(not_me, data={"csrf": csrf_of(http.get(not_me))}, timeout=10)
    assert done.status_code == 200 and outcome(done) == "declined"
    assert done.url.endswith("/withdrawn")
    ended = world.service.view(view.id)
    assert ended.status == "deleted" and ended.deleted_by == "customer"
    (event,) = world.audit("decline_invitation")
    assert event.preregistration_id == view.id and event.actor == "customer"
    app.sweep()
    (dm,) = app.fake.wait_for(
        "chat.postMessage", where=lambda c: "this wasn't me" in c.args.get("text", "")
    )
    assert dm.args["channel"] == "D" + ACME
    again = requests.get(link, timeout=10)
    assert again.status_code == 410 and "withdrawn" in again.text
    # the customer is free again
    assert world.preregister(email=view.email, user=BETA).status == "preregistered"
