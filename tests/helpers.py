"""Small builders shared by the tests."""

from __future__ import annotations

from bot.admin import Admin
from bot.directory_import import import_text
from bot.models import PreregistrationForm
from store.db import Database

DIRECTORY_HEADER = (
    "email,country,china_mainland,associated_partner,consumer,contract,cash_spend,"
    "direct_sales_preregistered,enterprise_master\n"
)


def form(
    email: str = "ceo@customer.de",
    name: str = "Clara Customer",
    mobile: str = "+49 1512 3456789",
    send: bool = True,
) -> PreregistrationForm:
    return PreregistrationForm(full_name=name, email=email, mobile=mobile, send_invitation=send)


def add_partner(
    admin: Admin,
    name: str,
    member: str,
    country: str = "DE",
    contact_email: str | None = "partner-desk@example.com",
) -> int:
    return admin.add_partner(name, country, [member], contact_email=contact_email)


def directory_row(email: str, country: str = "DE", **flags: object) -> str:
    values = {
        "china_mainland": "false",
        "associated_partner": "",
        "consumer": "false",
        "contract": "false",
        "cash_spend": "false",
        "direct_sales_preregistered": "false",
        "enterprise_master": "false",
    }
    values.update(
        {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in flags.items()}
    )
    return ",".join([email, country, *values.values()]) + "\n"


def load_directory(db: Database, now, *rows: str) -> int:  # type: ignore[no-untyped-def]
    return import_text(db, DIRECTORY_HEADER + "".join(rows), now)


def eventually(check, timeout: float = 10.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Polls `check` until it returns a truthy value (returned), for work the app finishes in
    its background worker after answering."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
