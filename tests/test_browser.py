"""The invitation page in a real headless browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

import io
import os
import shutil

import pytest
from PIL import Image

from bot.admin import Admin
from bot.clock import SystemClock
from bot.invitations import Invitations
from bot.service import PreregistrationService
from store.db import Database
from tests.helpers import form
from tests.slackapp import INVITE_SECRET

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI requires a headless browser: {reason}")
    pytest.skip(reason)


@pytest.fixture
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        _unavailable(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"Playwright for Python is not installed: {exc}")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
        except Exception as exc:  # noqa: BLE001 - any launch failure means "no browser"
            _unavailable(f"Chromium did not start: {exc}")
        yield chromium
        chromium.close()


@pytest.mark.browser
@pytest.mark.parametrize("running_app", ["sqlite"], indirect=True)
def test_r12_customer_accepts_the_invitation_in_a_phone_sized_browser(app, browser):
    db = Database(app.db_url)
    try:
        clock = SystemClock()
        Admin(db, clock).add_partner("Acme GmbH", "DE", ["UACME1"], contact_email="d@acme.de")
        service = PreregistrationService(db, clock)
        view = service.preregister("UACME1", form(email="ceo@customer.de")).preregistration
        link = Invitations(service, INVITE_SECRET, app.base_url).link_for(view)

        context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
        # the vendor's logo (VENDOR_LOGO_URL in tests/slackapp.py) from its CDN
        logo = io.BytesIO()
        Image.new("RGB", (32, 32), "#0b57d0").save(logo, "PNG")
        context.route(
            "https://cdn.nimbus.example/**",
            lambda route: route.fulfill(status=200, content_type="image/png", body=logo.getvalue()),
        )
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))

        page.goto(link)
        assert page.title().startswith("Acme GmbH invites you to become its customer")
        assert page.get_by_label("Email address you sign up with").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        button_colour = page.eval_on_selector(
            "button[type=submit]", "b => getComputedStyle(b).backgroundColor"
        )
        assert button_colour == "rgb(11, 87, 208)"  # the stylesheet loaded under the CSP

        page.get_by_label("Email address you sign up with").fill("CEO@customer.de")
        page.get_by_role("button", name="Accept invitation").click()
        page.wait_for_load_state()
        heading = page.get_by_role("heading", level=1)
        assert heading.inner_text() == "You are now Acme GmbH's customer"
        assert page.url.endswith("/accepted")  # POST/redirect/GET: a reload shows it again
        page.reload()
        assert page.get_by_role("heading", level=1).inner_text() == heading.inner_text()
        assert page.get_by_role("alert").count() == 0
        assert problems == []
        assert service.view(view.id).status == "associated"
        context.close()
    finally:
        db.dispose()
