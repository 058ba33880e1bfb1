"""The operator's command line, run as a subprocess the way an operator runs it."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.service import PreregistrationService
from store.db import Database
from store.models import DirectoryAccount, Partner, PartnerMember
from tests.helpers import DIRECTORY_HEADER, directory_row, form


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "bot.entry.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_partner_add_and_list(db_url, db):
    done = cli(
        db_url,
        "partner", "add", "--name", "Acme", "--country", "de",
        "--member", "UACME1", "--member", "UACME2", "--contact-email", "desk@acme.example",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout
    with db.session() as s:
        partner = s.scalars(select(Partner)).one()
        assert (partner.name, partner.country, partner.contact_email) == (
            "Acme",
            "DE",
            "desk@acme.example",
        )
        assert sorted(s.scalars(select(PartnerMember.slack_user_id))) == ["UACME1", "UACME2"]
    listed = cli(db_url, "partner", "list")
    assert "Acme\tDE\tdesk@acme.example\tlive 0/100\tmembers UACME1,UACME2" in listed.stdout


def test_partner_add_bad_input_names_each_field_and_writes_nothing(db_url, db):
    done = cli(
        db_url,
        "partner", "add", "--name", "Acme", "--country", "ZZ",
        "--member", "not-a-user", "--contact-email", "bad email",
    )  # fmt: skip
    assert done.returncode == 2
    for field in ("country", "member", "contact_email"):
        assert f"prereg-bot: {field}:" in done.stderr
    assert "exactly one @" in done.stderr  # the real problem, not the characters
    assert "Traceback" not in done.stderr
    with db.session() as s:
        assert s.scalars(select(Partner)).all() == []


def test_partner_add_refuses_a_member_of_another_partner(db_url, db):
    assert (
        cli(
            db_url, "partner", "add", "--name", "A", "--country", "DE", "--member", "UX1"
        ).returncode
        == 0
    )
    again = cli(db_url, "partner", "add", "--name", "B", "--country", "DE", "--member", "UX1")
    assert again.returncode == 2
    assert "already a member" in again.stderr


def test_manager_add(db_url, db):
    done = cli(db_url, "manager", "add", "UMGR1", "--email", "eco@vendor.example")
    assert done.returncode == 0 and "added" in done.stdout
    assert cli(db_url, "manager", "add", "UMGR1").stdout.strip().endswith("updated")
    assert cli(db_url, "manager", "add", "nobody").returncode == 2


def test_directory_import_then_reimport_updates(db_url, db, tmp_path: Path):
    path = tmp_path / "directory.csv"
    path.write_text(
        DIRECTORY_HEADER
        + directory_row("a@x.example", "DE")
        + directory_row("B@x.example", "FR", consumer=True)
    )
    done = cli(db_url, "directory", "import", str(path))
    assert done.returncode == 0, done.stderr
    assert "imported 2" in done.stdout
    path.write_text(DIRECTORY_HEADER + directory_row("b@x.example", "IT", consumer=False))
    assert cli(db_url, "directory", "import", str(path)).returncode == 0
    with db.session() as s:
        accounts = {
            a.email_norm: (a.country, a.consumer) for a in s.scalars(select(DirectoryAccount))
        }
    assert accounts == {"a@x.example": ("DE", False), "b@x.example": ("IT", False)}


def test_directory_import_with_a_bad_row_imports_nothing_and_names_every_line(db_url, db, tmp_path):
    path = tmp_path / "directory.csv"
    path.write_text(
        DIRECTORY_HEADER
        + directory_row("good@x.example")
        + directory_row("not-an-email")
        + directory_row("c@x.example", "QQ")
        + directory_row("d@x.example", consumer="maybe")
        + "e@x.example,DE,false\n"
    )
    done = cli(db_url, "directory", "import", str(path))
    assert done.returncode == 1
    for line, words in ((3, "email"), (4, "country"), (5, "consumer"), (6, "expected 9 fields")):
        assert f"line {line}: {words}" in done.stderr, done.stderr
    assert "nothing was imported" in done.stderr
    with db.session() as s:
        assert s.scalars(select(DirectoryAccount)).all() == []


@pytest.mark.parametrize(
    "content",
    [b"", b"email,country\nx@y.z,DE\n", b"\xff\xfe\x00binary", b'email,"unterminated\n'],
)
def test_directory_import_malformed_files_are_refused_cleanly(db_url, tmp_path, content):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    done = cli(db_url, "directory", "import", str(path))
    assert done.returncode == 1
    assert "nothing was imported" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.reliability("bad input", "NUL and control characters in directory CSV fields")
def test_directory_import_refuses_control_characters_with_the_line(db_url, db, tmp_path, tried):
    path = tmp_path / "directory.csv"
    path.write_text(
        DIRECTORY_HEADER
        + directory_row("good@x.example")
        + directory_row("nul\x00@x.example")
        + directory_row("c@x.example", associated_partner="Acme\x00")
        + directory_row("d@x.example", associated_partner="Bell\x07")
        + directory_row("e@x.example\x1b[2J")
        + directory_row("f@x.example", associated_partner="Over\u202eride")
    )
    tried(5)
    done = cli(db_url, "directory", "import", str(path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = done.stderr.splitlines()
    assert len(errors) == 6, done.stderr
    for line, field in ((3, "email"), (4, "associated_partner"), (5, "associated_partner")):
        assert f"line {line}: {field}: contains control" in done.stderr, done.stderr
    for line, field in ((6, "email"), (7, "associated_partner")):
        assert f"line {line}: {field}: contains control" in done.stderr, done.stderr
    assert "\x00" not in done.stderr and "\x1b" not in done.stderr
    assert errors[-1].endswith("nothing was imported")
    with db.session() as s:
        assert s.scalars(select(DirectoryAccount)).all() == []


@pytest.mark.reliability("bad input", "sweep --at instants the rules cannot compute with")
@pytest.mark.parametrize(
    "at",
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00Z",
        "9500-01-01T00:00:00Z",
    ],
)
def test_sweep_refuses_an_instant_out_of_range_in_one_line(db_url, db, admin, clock, at, tried):
    admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    service = PreregistrationService(Database(db_url), clock)
    p = service.preregister("UACME1", form()).preregistration
    tried(1)
    done = cli(db_url, "sweep", "--at", at)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("prereg-bot: --at:"), line
    assert service.view(p.id).status == "preregistered"


def test_sweep_says_how_to_write_the_instant(db_url):
    done = cli(db_url, "sweep", "--at", "yesterday")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "'yesterday' is not a date and time" in line and "2026-12-01T09:00:00Z" in line, line


def test_directory_import_missing_file(db_url, tmp_path):
    done = cli(db_url, "directory", "import", str(tmp_path / "missing.csv"))
    assert done.returncode == 2 and "no such file" in done.stderr


def test_customers_export(db_url, db, admin, clock):
    admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    admin.add_partner("Beta", "DE", ["UBETA1"], contact_email="desk@beta.example")
    service = PreregistrationService(Database(db_url), clock)
    service.preregister("UACME1", form(email="one@customer.de", name="=HYPERLINK(1)"))
    service.preregister("UBETA1", form(email="two@customer.de"))
    done = cli(db_url, "customers", "export", "--partner", "Acme")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["partner"], r["email"], r["status"]) for r in rows] == [
        ("Acme", "one@customer.de", "preregistered")
    ]
    assert rows[0]["full_name"] == "'=HYPERLINK(1)"
    everything = list(csv.DictReader(io.StringIO(cli(db_url, "customers", "export").stdout)))
    assert len(everything) == 2


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_COLUMNS = (
    "partner", "full_name", "email", "mobile", "association_type", "status",
    "customer_country", "submitted_by", "decided_by", "decision_reason",
)  # fmt: skip


@pytest.mark.reliability("attack", "formula injection in every text column of the CSV export")
def test_customers_export_neutralises_formulas_in_every_text_cell(db, admin, clock, tried):
    from bot.admin import Admin
    from store.models import Preregistration

    for i, start in enumerate(FORMULA_STARTS):
        admin.add_partner(f"P{i}", "DE", [f"UP{i}"], contact_email="desk@example.com")
        with db.session() as s:
            partner = s.scalars(select(Partner).where(Partner.name == f"P{i}")).one()
            partner.name = f"{start}P{i}"
            s.add(
                Preregistration(
                    partner_id=partner.id,
                    full_name=f"{start}cmd|' /C calc'!A0",
                    email=f"{start}2+3@customer.de",
                    email_norm=f"{start}2+3@customer.de",
                    mobile=f"{start}49 1512 3456789",
                    send_invitation=True,
                    association_type=f"{start}reseller",
                    status=f"{start}status",
                    customer_country=f"{start}D",
                    submitted_by=f"{start}U1",
                    submitted_at=clock.now(),
                    decided_by=f"{start}U2",
                    decision_reason=f"{start}SUM(A1:A9)",
                )
            )
    out = io.StringIO(newline="")
    assert Admin(db, clock).export_customers(out) == len(FORMULA_STARTS)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    tried(len(rows) * len(TEXT_COLUMNS))
    assert len(rows) == len(FORMULA_STARTS)
    for row, start in zip(rows, FORMULA_STARTS, strict=True):
        for column in TEXT_COLUMNS:
            assert row[column].startswith("'" + start), (column, row[column])


def test_customers_export_neutralises_a_real_email_and_mobile(db_url, admin, clock):
    admin.add_partner("Acme", "DE", ["UACME1"], contact_email="desk@acme.example")
    service = PreregistrationService(Database(db_url), clock)
    service.preregister("UACME1", form(email="-1-2@customer.de", mobile="+49 1512 3456789"))
    done = cli(db_url, "customers", "export")
    assert done.returncode == 0, done.stderr
    [row] = list(csv.DictReader(io.StringIO(done.stdout)))
    assert row["email"] == "'-1-2@customer.de"
    assert row["mobile"].startswith("'+49")


def test_db_upgrade_is_repeatable(db_url):
    assert cli(db_url, "db", "upgrade").returncode == 0
    assert cli(db_url, "db", "upgrade").stdout.strip() == "database is up to date"
