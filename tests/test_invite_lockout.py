"""The invitation lock-out under attack, over real HTTP against a running app (R6, R12).

Different client addresses come from binding the client socket to other loopback addresses
(127.0.0.2, 127.0.0.3, ...): the server sees them as REMOTE_ADDR and trusts no
X-Forwarded-For header.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import select

from bot.admin import Admin
from bot.clock import SystemClock
from bot.errors import InvalidInput, Refused
from bot.invitations import (
    GUESSING_ALERT,
    LOCKOUT,
    MAX_FAILED_ATTEMPTS,
    Invitations,
    InviteState,
)
from bot.service import PreregistrationService
from bot.validation import normalise_email, same_email
from store.db import Database
from store.models import Delivery, InviteAttempt, Preregistration
from tests.helpers import add_partner, eventually, form
from tests.slackapp import INVITE_SECRET

ACME = "UACME1"
LIMIT = MAX_FAILED_ATTEMPTS
CUSTOMER = "kate@digital-services.de"
# Unicode look-alikes of the registered address: each folds to it by lower(), casefold() or NFKC.
LOOK_ALIKES = [
    "\u212aate@digital-services.de",  # KELVIN SIGN: "\u212a".lower() == "k"
    "kate@digital-\u017fervices.de",  # LATIN SMALL LETTER LONG S: casefolds to "s"
    "\uff4bate@digital-services.de",  # FULLWIDTH LATIN SMALL LETTER K: NFKC to "k"
    "KATE@D\u0130GITAL-SERVICES.DE",  # LATIN CAPITAL LETTER I WITH DOT ABOVE: lower() "i\u0307"
    "kate@digital-services.de\u200b",  # ZERO WIDTH SPACE appended
]


class SourceAdapter(HTTPAdapter):
    """Connects from a given local address, so the server sees another REMOTE_ADDR."""

    def __init__(self, source: str) -> None:
        self._source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kwargs)


def client(source: str = "127.0.0.1") -> requests.Session:
    http = requests.Session()
    http.mount("http://", SourceAdapter(source))
    return http


@dataclass
class World:
    db: Database
    service: PreregistrationService
    invitations: Invitations

    def invite(self, email: str = CUSTOMER) -> tuple[int, str]:
        view = self.service.preregister(ACME, form(email=email, send=False)).preregistration
        return view.id, self.invitations.link_for(view)

    def status(self, pid: int) -> str:
        view = self.service.view(pid)
        assert view is not None
        return view.status

    def wrong_checked(self, pid: int) -> int:
        """Wrong addresses actually compared with the registered one (all clients)."""
        with self.db.session() as s:
            row = s.get(Preregistration, pid)
            assert row is not None
            return int(row.invite_failed_attempts or 0)

    def client_attempts(self, pid: int) -> list[int]:
        with self.db.session() as s:
            rows = s.scalars(
                select(InviteAttempt).where(InviteAttempt.preregistration_id == pid)
            ).all()
            return sorted(r.attempts for r in rows)

    def alerts(self, pid: int) -> list[Delivery]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(Delivery).where(
                        Delivery.preregistration_id == pid, Delivery.kind == GUESSING_ALERT
                    )
                ).all()
            )


@pytest.fixture
def world(app):
    db = Database(app.db_url)
    clock = SystemClock()
    Admin(db, clock).add_partner("Acme GmbH", "DE", [ACME], contact_email="desk@acme.example")
    service = PreregistrationService(db, clock)
    yield World(db, service, Invitations(service, INVITE_SECRET, app.base_url))
    db.dispose()


def csrf_of(page: requests.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def outcome(page: requests.Response) -> str:
    match = re.search(r'data-outcome="([a-z_]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def opened(link: str, source: str = "127.0.0.1") -> tuple[requests.Session, str]:
    """A browser that has opened the page: its session (cookie) and the form's token."""
    http = client(source)
    page = http.get(link, timeout=10)
    assert page.status_code == 200, page.text[:500]
    return http, csrf_of(page)


def post(link: str, email: str, source: str = "127.0.0.1") -> requests.Response:
    http, csrf = opened(link, source)
    return http.post(link, data={"email": email, "csrf": csrf}, timeout=10)


def at_once(link: str, emails: list[str], source: str = "127.0.0.1") -> list[requests.Response]:
    """Every form opened first, then all of them posted at the same instant."""
    forms = [opened(link, source) for _ in emails]
    start = threading.Barrier(len(emails))

    def send(i: int) -> requests.Response:
        http, csrf = forms[i]
        start.wait()
        return http.post(link, data={"email": emails[i], "csrf": csrf}, timeout=60)

    with ThreadPoolExecutor(max_workers=len(emails)) as pool:
        return list(pool.map(send, range(len(emails))))


# --- defect 4: counting and checking are one step ----------------------------------------------


@pytest.mark.reliability("attack", "concurrent wrong addresses race the invitation lock-out")
def test_concurrent_wrong_addresses_check_at_most_the_limit(app, world, tried):
    tried(30)
    pid, link = world.invite()
    pages = at_once(link, [f"guess{i}@x.de" for i in range(30)])
    assert sorted(p.status_code for p in pages) == [422] * (LIMIT - 1) + [429] * (31 - LIMIT)
    assert world.wrong_checked(pid) == LIMIT
    assert world.client_attempts(pid) == [LIMIT]
    assert world.status(pid) == "preregistered"


@pytest.mark.reliability("attack", "concurrent wrong addresses race the invitation lock-out")
@pytest.mark.parametrize("before", [0, LIMIT - 1, LIMIT])
def test_right_address_racing_wrong_ones_is_checked_only_within_the_limit(
    app, world, tried, before
):
    """The guarantee: from one client, at most LIMIT addresses (right or wrong) are compared
    per lock-out window, counting those in flight. The right one, racing 15 wrong ones,
    associates only if it was among the first LIMIT; once the client is locked (`before` ==
    LIMIT), never."""
    tried(before + 16)
    pid, link = world.invite()
    for i in range(before):
        post(link, f"early{i}@x.de")
    emails = [f"guess{i}@x.de" for i in range(15)]
    emails.insert(7, CUSTOMER)
    pages = at_once(link, emails)
    right = pages[7]
    associated = world.status(pid) == "associated"
    checked = world.wrong_checked(pid) + (1 if associated else 0)
    assert checked <= LIMIT
    if associated:
        # posts that arrived after the association meet a used invitation, unchecked
        assert right.status_code == 200 and outcome(right) == "associated"
        assert world.client_attempts(pid)[0] <= LIMIT
        assert {p.status_code for p in pages} <= {200, 422, 429, 410}
    else:
        assert right.status_code == 429 and outcome(right) == "locked"
        assert world.wrong_checked(pid) == LIMIT
        assert world.client_attempts(pid) == [LIMIT]
    if before == LIMIT:
        assert not associated
        assert all(p.status_code == 429 for p in pages)


@pytest.mark.reliability("attack", "a third party locks the real customer out of the invitation")
def test_a_locked_out_third_party_does_not_lock_out_the_customer(app, world, tried):
    tried(LIMIT + 3)
    pid, link = world.invite()
    statuses = [post(link, f"guess{i}@x.de", "127.0.0.2").status_code for i in range(LIMIT + 2)]
    assert statuses == [422] * (LIMIT - 1) + [429] * 3
    # a forwarded header does not let the abuser pose as someone else (not trusted)
    http, csrf = opened(link, "127.0.0.2")
    spoofed = http.post(
        link,
        data={"email": "again@x.de", "csrf": csrf},
        headers={"X-Forwarded-For": "203.0.113.9"},
        timeout=10,
    )
    assert spoofed.status_code == 429
    # the customer, elsewhere, types a typo and then the right address
    assert post(link, "kate@customer.com", "127.0.0.3").status_code == 422
    page = post(link, CUSTOMER, "127.0.0.3")
    assert page.status_code == 200 and outcome(page) == "associated"
    assert world.status(pid) == "associated"


@pytest.mark.reliability("attack", "a third party locks the real customer out of the invitation")
def test_repeated_wrong_guesses_alert_the_partner_once(app, world, tried):
    tried(LIMIT * 2)
    pid, link = world.invite()
    for i in range(LIMIT - 1):
        post(link, f"guess{i}@x.de", "127.0.0.2")
    assert world.alerts(pid) == []
    post(link, "last@x.de", "127.0.0.2")
    for i in range(LIMIT):
        post(link, f"more{i}@x.de", "127.0.0.4")
    assert len(world.alerts(pid)) == 1

    def alerted() -> list[str]:
        return [
            str(c.args.get("text", ""))
            for c in app.fake.calls_to("chat.postMessage")
            if c.args.get("channel") == "D" + ACME
            and "Wrong email addresses" in c.args.get("text", "")
        ]

    (text,) = eventually(alerted)
    assert "new invitation" in text


@pytest.mark.reliability("attack", "blind or transplanted invitation form posts")
def test_the_form_token_is_needed_and_bound_to_the_client(app, world, tried):
    tried(3)
    pid, link = world.invite()
    blind = client().post(link, data={"email": CUSTOMER}, timeout=10)
    assert blind.status_code == 400 and outcome(blind) == "form_expired"
    # a token and cookie obtained from one address do not work from another
    http, csrf = opened(link, "127.0.0.2")
    other = client("127.0.0.3")
    other.cookies.update(http.cookies)
    moved = other.post(link, data={"email": CUSTOMER, "csrf": csrf}, timeout=10)
    assert moved.status_code == 400 and outcome(moved) == "form_expired"
    assert world.status(pid) == "preregistered"
    assert world.wrong_checked(pid) == 0
    assert http.post(link, data={"email": CUSTOMER, "csrf": csrf}, timeout=10).status_code == 200


# --- defect 8: look-alike addresses --------------------------------------------------------------


@pytest.mark.reliability("bad input", "Unicode look-alikes of the registered email")
def test_look_alike_addresses_are_refused_on_the_invitation_page(app, world, tried):
    tried(len(LOOK_ALIKES) + 1)
    pid, link = world.invite()
    for email in LOOK_ALIKES:
        page = post(link, email)
        assert page.status_code == 422, email
        assert outcome(page) in ("invalid_email", "mismatch"), email
        assert world.status(pid) == "preregistered", email
    page = post(link, "  KATE@Digital-Services.de ")
    assert page.status_code == 200 and outcome(page) == "associated"


@pytest.mark.reliability("bad input", "Unicode look-alikes of the registered email")
def test_look_alike_addresses_are_refused_by_the_service(service, tried):
    tried(3 * len(LOOK_ALIKES))
    add_partner(Admin(service.db, service.clock), "Acme GmbH", ACME)
    view = service.preregister(ACME, form(email=CUSTOMER)).preregistration
    invitations = Invitations(service, INVITE_SECRET, "https://invite.example")
    token = invitations.token_for(view)
    for email in LOOK_ALIKES:
        assert not same_email(email, CUSTOMER), email
        assert normalise_email(email) != CUSTOMER, email
        with pytest.raises(Refused) as refused:
            service.associate(view.id, email)
        assert refused.value.code == "email_mismatch"
        assert invitations.accept(token, email).state is InviteState.INVALID_EMAIL
        with pytest.raises(InvalidInput):  # the modal's path
            service.preregister(ACME, form(email=email.replace("kate", "other")))
    assert service.view(view.id).status == "preregistered"
    assert same_email(" Kate@Digital-Services.DE ", CUSTOMER)
    assert invitations.accept(token, "KATE@digital-services.de").state is InviteState.ASSOCIATED


# --- the rules without HTTP ----------------------------------------------------------------------


def test_clients_are_keyed_without_their_address(service):
    invitations = Invitations(service, INVITE_SECRET, "https://invite.example")
    key = invitations.client_of("203.0.113.9")
    assert len(key) == 32 and "203" not in key
    assert invitations.client_of("::ffff:203.0.113.9") == key
    assert invitations.client_of("203.0.113.10") != key
    # one IPv6 subscriber (a /64) is one client, whichever address it picks
    assert invitations.client_of("2001:db8:1:2::1") == invitations.client_of("2001:db8:1:2:ab::9")
    assert invitations.client_of("2001:db8:1:3::1") != invitations.client_of("2001:db8:1:2::1")
    other_secret = Invitations(service, INVITE_SECRET + "x", "https://invite.example")
    assert other_secret.client_of("203.0.113.9") != key


@pytest.mark.reliability("attack", "a third party locks the real customer out of the invitation")
def test_each_client_has_its_own_lock_out_window(service, clock, tried):
    tried(LIMIT + 3)
    add_partner(Admin(service.db, service.clock), "Acme GmbH", ACME)
    view = service.preregister(ACME, form(email=CUSTOMER)).preregistration
    invitations = Invitations(service, INVITE_SECRET, "https://invite.example")
    token = invitations.token_for(view)
    abuser, customer = invitations.client_of("192.0.2.1"), invitations.client_of("192.0.2.2")
    states = [invitations.accept(token, f"g{i}@x.de", abuser).state for i in range(LIMIT + 1)]
    assert states == [InviteState.MISMATCH] * (LIMIT - 1) + [InviteState.LOCKED] * 2
    assert invitations.accept(token, CUSTOMER, abuser).state is InviteState.LOCKED
    assert invitations.accept(token, "typo@x.de", customer).attempts_left == LIMIT - 1
    clock.advance(LOCKOUT + timedelta(seconds=1))
    assert invitations.accept(token, "again@x.de", abuser).attempts_left == LIMIT - 1
    assert invitations.accept(token, CUSTOMER, customer).state is InviteState.ASSOCIATED
