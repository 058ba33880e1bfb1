"""Submission of the preregistration modal (R7): field errors and rule refusals inline, the
confirmation in place of the form. The view id is the request key, so a retried submission
creates nothing twice."""

from __future__ import annotations

import logging
from typing import Any

from bot.errors import BUSY_MESSAGE, Busy, InvalidInput, Refused
from bot.i18n import _
from bot.models import PreregistrationForm
from handlers import views

log = logging.getLogger(__name__)
MAX_ERROR = 1500


def _text(values: dict[str, Any], block_id: str) -> str:
    return str(((values.get(block_id) or {}).get(views.VALUE_ACTION) or {}).get("value") or "")


def read_form(view: dict[str, Any]) -> PreregistrationForm:
    values = (view.get("state") or {}).get("values") or {}
    radio = (values.get("send_invitation") or {}).get(views.VALUE_ACTION) or {}
    choice = (radio.get("selected_option") or {}).get("value", "yes")
    return PreregistrationForm(
        full_name=_text(values, "full_name"),
        email=_text(values, "email"),
        mobile=_text(values, "mobile"),
        send_invitation=choice != "no",
    )


def field_errors(invalid: InvalidInput) -> dict[str, str]:
    """Service field names are the modal's block ids; anything else lands on the email."""
    errors: dict[str, str] = {}
    for field, message in invalid.errors.items():
        block = field if field in views.FIELD_BLOCKS else "email"
        errors[block] = (errors.get(block, "") + " " + message).strip()[:MAX_ERROR]
    return errors


def register(app: Any, services: Any) -> None:
    service = services.service

    @app.view(views.PREREGISTER_CALLBACK)
    def submitted(ack, body, view, context) -> None:  # type: ignore[no-untyped-def]
        user = context["actor"]
        form = read_form(view)
        try:
            outcome = service.preregister(user, form, request_key=view["id"])
        except InvalidInput as invalid:
            ack(response_action="errors", errors=field_errors(invalid))
            return
        except Refused as refused:
            hint = views.contact_plain(service.manager_contacts())
            ack(response_action="errors", errors={"email": f"{refused.message} {hint}"[:MAX_ERROR]})
            return
        except Busy:
            log.warning("database busy: told %s to submit the form again", user)
            ack(response_action="errors", errors={"email": _(BUSY_MESSAGE)})
            return
        ack(response_action="update", view=views.confirmation_modal(outcome.preregistration))
        if outcome.created:
            services.deliverer.kick()
