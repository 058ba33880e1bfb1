"""`prereg-bot directory import`: validate the whole CSV first, then upsert it in one go."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.validation import COUNTRIES, has_control_chars
from store import directory as directory_store
from store.db import Database

HEADER = (
    "email",
    "country",
    "china_mainland",
    "associated_partner",
    "consumer",
    "contract",
    "cash_spend",
    "direct_sales_preregistered",
    "enterprise_master",
)
BOOLEAN_COLUMNS = tuple(c for c in HEADER if c not in ("email", "country", "associated_partner"))
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BOOLS = {"true": True, "false": False}


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class DirectoryImportError(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} bad row(s); nothing was imported")
        self.errors = errors


def parse(text: Iterable[str], now: datetime) -> list[dict[str, Any]]:
    """Every row as a dict ready for the store, or DirectoryImportError listing every bad row."""
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise DirectoryImportError([RowError(1, "the file is empty; expected a header")]) from None
    except csv.Error as exc:
        raise DirectoryImportError([RowError(1, f"malformed CSV: {exc}")]) from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    if tuple(header) != HEADER:
        raise DirectoryImportError([RowError(1, f"the header must be exactly: {','.join(HEADER)}")])
    rows: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    errors: list[RowError] = []
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not f.strip() for f in record):
                continue
            row, problems = _row(record)
            if problems:
                errors.extend(RowError(line, p) for p in problems)
                continue
            email = row["email_norm"]
            if email in rows:
                errors.append(RowError(line, f"email {email} repeats line {first_line[email]}"))
                continue
            row["updated_at"] = now
            rows[email] = row
            first_line[email] = line
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, f"malformed CSV: {exc}"))
    if errors:
        raise DirectoryImportError(errors)
    return list(rows.values())


def _row(record: list[str]) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    if len(record) != len(HEADER):
        return {}, [f"expected {len(HEADER)} fields, found {len(record)}"]
    values = dict(zip(HEADER, (f.strip() for f in record), strict=True))
    unsafe = [column for column, value in values.items() if has_control_chars(value)]
    if unsafe:
        # NUL cannot be stored by PostgreSQL; no field has a use for control characters
        return {}, [f"{column}: contains control or invisible characters" for column in unsafe]
    email = values["email"].lower()
    if not _EMAIL.match(email) or len(email) > 254:
        problems.append(f"email: {values['email']!r} is not an email address")
    country = values["country"].upper()
    if country not in COUNTRIES:
        problems.append(f"country: unknown country code {values['country']!r}")
    partner = values["associated_partner"]
    if len(partner) > 200:
        problems.append("associated_partner: longer than 200 characters")
    row: dict[str, Any] = {
        "email_norm": email,
        "country": country,
        "associated_partner": partner or None,
    }
    for column in BOOLEAN_COLUMNS:
        flag = _BOOLS.get(values[column].lower())
        if flag is None:
            problems.append(f"{column}: expected true or false, got {values[column]!r}")
        row[column] = flag
    return row, problems


def import_text(db: Database, text: str | Iterable[str], now: datetime) -> int:
    """Validates everything, then writes everything in one transaction. Returns the row count."""
    lines = io.StringIO(text, newline="") if isinstance(text, str) else text
    rows = parse(lines, now)
    with db.session() as s:
        directory_store.upsert_many(s, rows)
    return len(rows)


def import_file(db: Database, path: str, now: datetime) -> int:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return import_text(db, fh, now)
    except UnicodeDecodeError as exc:
        raise DirectoryImportError([RowError(0, f"the file is not UTF-8 text: {exc}")]) from None
