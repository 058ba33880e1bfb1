"""Domain errors: every refusal carries a code for programs and a cause in plain words."""

from __future__ import annotations

from bot.i18n import N_
from store.db import DatabaseBusy


class Refused(Exception):
    """A rule refused the request. Nothing was changed."""

    def __init__(self, code: str, message: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.rule = rule


class InvalidInput(Exception):
    """One or more fields are malformed. `errors` maps field name to a message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class NotFound(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


Busy = DatabaseBusy
"""The database did not answer in time: a lock held elsewhere, or a statement too slow. The
transaction was rolled back, so nothing was changed, and asking again soon is the remedy."""

BUSY_MESSAGE = N_(
    "The database is busy just now, so nothing was saved. Please try again in a moment."
)
"""Translated with `_` where it is shown."""
