"""Set-up for the end-to-end Slack tests: partners, managers and rows written straight into the
running app's database, and the payloads a user's clicks produce."""

from __future__ import annotations

import json
from typing import Any

from bot.admin import Admin
from bot.clock import SystemClock
from bot.models import PreregView
from bot.service import PreregistrationService
from store.db import Database
from tests.helpers import form, load_directory

MEMBER = "UMEMBER1"
OTHER_MEMBER = "UOTHER1"
MANAGER = "UMANAGER1"
MANAGER_EMAIL = "eco@vendor.example"


class Direct:
    """The running app's database, used the way the operator and the service use it."""

    def __init__(self, db_url: str) -> None:
        self.db = Database(db_url)
        self.clock = SystemClock()
        self.admin = Admin(self.db, self.clock)
        self.service = PreregistrationService(self.db, self.clock)

    def close(self) -> None:
        self.db.dispose()

    def partner(
        self,
        name: str = "Acme GmbH",
        member: str = MEMBER,
        country: str = "DE",
        contact: bool = True,
    ) -> int:
        email = f"desk@{name.split()[0].lower()}.example" if contact else None
        return self.admin.add_partner(name, country, [member], contact_email=email)

    def manager(self, user: str = MANAGER, email: str = MANAGER_EMAIL) -> None:
        self.admin.add_manager(user, email)

    def directory(self, *rows: str) -> None:
        load_directory(self.db, self.clock.now(), *rows)

    def prereg(self, email: str, user: str = MEMBER, **kw: Any) -> PreregView:
        return self.service.preregister(user, form(email=email, **kw)).preregistration

    def many(self, count: int, user: str = MEMBER, prefix: str = "c", send: bool = True) -> list:
        return [
            self.prereg(f"{prefix}{i}@customer.de", user, name=f"Customer {i:03d}", send=send)
            for i in range(count)
        ]

    def status(self, preregistration_id: int) -> str:
        view = self.service.view(preregistration_id)
        assert view is not None
        return view.status


def modal_values(
    name: str = "Clara Customer",
    email: str = "ceo@customer.de",
    mobile: str = "+49 1512 3456789",
    send: str = "yes",
) -> dict[str, dict[str, dict[str, Any]]]:
    def text(value: str) -> dict[str, Any]:
        return {"value": {"type": "plain_text_input", "value": value}}

    return {
        "full_name": text(name),
        "email": text(email),
        "mobile": text(mobile),
        "send_invitation": {"value": {"type": "radio_buttons", "selected_option": {"value": send}}},
    }


def elements(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every interactive element of a message: accessories and actions blocks' elements."""
    found = []
    for block in message.get("blocks", []):
        if "accessory" in block:
            found.append({**block["accessory"], "_block_id": block.get("block_id")})
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            found.append({**element, "_block_id": block.get("block_id")})
    return found


def element(message: dict[str, Any], action_id: str, value: str | None = None) -> dict[str, Any]:
    for e in elements(message):
        if e.get("action_id") == action_id and (value is None or e.get("value") == value):
            return e
    raise AssertionError(f"no {action_id} ({value}) in {json.dumps(message)[:500]}")


def body_text(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
