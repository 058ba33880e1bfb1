"""Row ids read back from Slack payloads (button values, checkbox options, private_metadata).

Signed payloads can still be forged by anyone holding a workspace token, and Python is lenient
where the database is not: `"²".isdigit()` is true but `int("²")` fails, `int("١٢")` is 12,
and a 30-digit number overflows the integer column. One strict parser for every handler.
"""

from __future__ import annotations

MAX_ID = 2**31 - 1  # the id columns are 32-bit integers on PostgreSQL
_MAX_DIGITS = len(str(MAX_ID))


def parse_id(raw: object) -> int | None:
    """A positive id within the database's integer range, from an int or a string of ASCII
    digits; None for anything else (the handler then says the button is out of date)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= _MAX_DIGITS:
        value = int(raw)
    else:
        return None
    return value if 1 <= value <= MAX_ID else None
