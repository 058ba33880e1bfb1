"""Property-based bad input (hypothesis) through the core: arbitrary text in every field of
the form and of the directory CSV gets a clear refusal or is stored as given; never a crash,
never a half-written state."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.directory_import import HEADER, DirectoryImportError, import_text
from bot.errors import InvalidInput, Refused
from bot.models import PreregistrationForm
from store.models import DirectoryAccount, Preregistration
from tests.helpers import add_partner

NASTY = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        [
            "<!channel>",
            "<https://evil.example|click>",
            "<script>alert(1)</script>",
            "a\x00b",
            "\u202eevil",
            "x" * 5000,
            "ceo@customer.de\n",
            "=cmd|' /C calc'!A0",
            "",
            "   ",
        ]
    ),
)
EMAILS = st.one_of(
    NASTY, st.from_regex(r"[a-z0-9_]{1,12}[a-z0-9_.-]{0,8}@[a-z0-9]{1,12}\.de", fullmatch=True)
)
MOBILES = st.one_of(
    NASTY, st.sampled_from(["+49 1512 3456789", "01512 3456788", "+33 6 12 34 56 78"])
)
CHECKS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def _count(db, model) -> int:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


@pytest.mark.reliability("bad input", "arbitrary text in every modal field (service)")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(max_examples=150, deadline=None, suppress_health_check=CHECKS, derandomize=True)
@given(name=NASTY, email=EMAILS, mobile=MOBILES, send=st.booleans())
def test_arbitrary_form_input_is_refused_or_stored_whole(
    service, admin, db, tried, name, email, mobile, send
):
    tried()
    if _count(db, Preregistration) == 0 and not service.is_manager("UPROP0"):
        add_partner(admin, f"Prop {id(db)}", "UPROP1")
        admin.add_manager("UPROP0")
    before = _count(db, Preregistration)
    form = PreregistrationForm(full_name=name, email=email, mobile=mobile, send_invitation=send)
    try:
        outcome = service.preregister("UPROP1", form)
    except (InvalidInput, Refused) as exc:
        message = " ".join(exc.errors.values()) if isinstance(exc, InvalidInput) else exc.message
        assert message and "Traceback" not in message
        assert _count(db, Preregistration) == before
        return
    stored = outcome.preregistration
    assert _count(db, Preregistration) == before + 1
    assert stored.full_name == " ".join(name.split())
    assert stored.email == email.strip()
    assert all(ch.isprintable() for ch in stored.full_name)


@pytest.mark.reliability("bad input", "arbitrary text in every directory CSV field")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(max_examples=150, deadline=None, suppress_health_check=CHECKS, derandomize=True)
@given(fields=st.lists(NASTY, min_size=9, max_size=9), good_rows=st.integers(0, 3))
def test_arbitrary_csv_rows_import_whole_or_not_at_all(db, clock, tried, fields, good_rows):
    tried()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for i in range(good_rows):
        writer.writerow([f"ok{i}@x.example", "DE", *["false"] * 7])
    writer.writerow(fields)
    before = _count(db, DirectoryAccount)
    try:
        count = import_text(db, out.getvalue(), clock.now())
    except DirectoryImportError as exc:
        assert exc.errors and all(str(e).startswith("line ") for e in exc.errors)
        assert _count(db, DirectoryAccount) == before
        return
    if all(not f.strip() for f in fields):  # a blank line is skipped, not an error
        assert count == good_rows
        return
    assert count == good_rows + 1
    with db.session() as s:
        stored = s.get(DirectoryAccount, fields[0].strip().lower())
    assert stored is not None
