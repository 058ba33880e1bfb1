"""Operating the app without SQL (issue 17, part 2): every operator command run the way an
operator runs it (`prereg-bot ...` as a subprocess, or `main()`), checking what they see."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.entry.cli import build_parser, main
from bot.errors import Refused
from bot.service import PreregistrationService
from bot.settings import ConfigError, Settings
from store.db import Database
from store.models import AuditEvent, Delivery, Partner, PartnerMember, Preregistration
from tests.helpers import form

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDERS = {  # the values of .env.example that only stand for a real one
    "SLACK_BOT_TOKEN": "xoxb-your-bot-token",
    "SLACK_SIGNING_SECRET": "your-signing-secret",
    "SLACK_APP_TOKEN": "xapp-...",
    "MANAGER_CHANNEL_ID": "C0123456789",
    "PUBLIC_BASE_URL": "https://prereg.example.com",
    "INVITE_SECRET": "change-me-to-a-long-random-string",
    "SMTP_FROM": "prereg-bot@example.com",
    "SLACK_CLIENT_ID": "1234567890.1234567890",
    "SLACK_CLIENT_SECRET": "your-client-secret",
    "VENDOR_TEAM_ID": "T0123456789",
}
SERVE_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s",
    "MANAGER_CHANNEL_ID": "C1",
    "PUBLIC_BASE_URL": "http://localhost:3000",
    "INVITE_SECRET": "x" * 32,
    "SMTP_HOST": "127.0.0.1",
    "SMTP_FROM": "bot@vendor.example",
}


def cli(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SMTP_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.entry.cli", *args],
        env={**clean, "DATABASE_URL": db_url, **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The operator sees exactly one line on stderr, and no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("prereg-bot: "), lines[0]
    return lines[0]


def acme(admin, *members: str) -> int:  # type: ignore[no-untyped-def]
    return admin.add_partner(
        "Acme GmbH", "DE", list(members or ["UACME1"]), contact_email="desk@acme.example"
    )


# --- --version and --help -------------------------------------------------------------------


def test_version_comes_from_the_package_metadata():
    done = subprocess.run(
        [sys.executable, "-m", "bot.entry.cli", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"prereg-bot {metadata.version('prereg-bot')}"


def _commands(parser, path=()):  # type: ignore[no-untyped-def]
    """Every (command path, its parser), depth first."""
    yield path, parser
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                assert helps.get(name), f"{' '.join((*path, name))} has no summary"
                yield from _commands(child, (*path, name))


def test_every_command_and_option_explains_itself(capsys):
    commands = list(_commands(build_parser()))
    assert len(commands) > 20
    for path, parser in commands:
        for action in parser._actions:
            if action.option_strings or action.dest not in ("command", "action", "member_action"):
                assert action.help, f"{' '.join(path)} {action.option_strings or action.dest}"
        with pytest.raises(SystemExit) as exited:
            main([*path, "--help"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: prereg-bot"), path
    for words in (("partner", "deactivate"), ("sweep",), ("preregistration", "show")):
        main_help = subprocess.run(
            [sys.executable, "-m", "bot.entry.cli", *words, "--help"],
            capture_output=True,
            text=True,
        )
        assert main_help.returncode == 0 and "DESIGN" not in main_help.stdout


# --- partner show | edit | members | deactivate ---------------------------------------------


def test_partner_show_and_edit(db_url, db, admin):
    pid = acme(admin, "UACME1", "T0ACME:UACME2")
    shown = cli(db_url, "partner", "show", "Acme GmbH")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"name:\s+Acme GmbH", shown.stdout)
    assert re.search(r"members:\s+T0ACME:UACME2, UACME1", shown.stdout)
    assert re.search(r"state:\s+active", shown.stdout)
    as_json = json.loads(cli(db_url, "partner", "show", str(pid), "--json").stdout)
    assert as_json["partner"]["contact_email"] == "desk@acme.example"

    edited = cli(
        db_url, "partner", "edit", "Acme GmbH", "--name", "Acme AG", "--country", "at",
        "--contact-mobile", "+43 664 1234567", "--contact-email", "",
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert "partner 'Acme AG' updated" in edited.stdout
    with db.session() as s:
        p = s.get(Partner, pid)
        assert (p.name, p.country, p.contact_email, p.contact_mobile) == (
            "Acme AG", "AT", None, "+436641234567",
        )  # fmt: skip
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "partner_edit")).all()
        assert [e.detail for e in events] == [
            {"fields": ["contact_email", "contact_mobile", "country", "name"]}
        ]


@pytest.mark.reliability("bad input", "partner edit/show with bad values or an unknown partner")
def test_partner_edit_bad_input_names_each_field_and_changes_nothing(db_url, db, admin, tried):
    pid = acme(admin)
    admin.add_partner("Beta", "DE", ["UBETA1"], contact_email="desk@beta.example")
    done = cli(
        db_url, "partner", "edit", "Acme GmbH", "--name", "Beta", "--country", "ZZ",
        "--contact-email", "not an email",
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    for field in ("name", "country", "contact_email"):
        assert f"prereg-bot: {field}:" in done.stderr, done.stderr
    nothing = cli(db_url, "partner", "edit", "Acme GmbH")
    assert nothing.returncode == 2 and "Nothing to change" in one_line(nothing)
    unknown = cli(db_url, "partner", "show", "Nobody Ltd")
    assert unknown.returncode == 2 and "No partner named 'Nobody Ltd'" in one_line(unknown)
    tried(3)
    with db.session() as s:
        p = s.get(Partner, pid)
        assert (p.name, p.country, p.contact_email) == ("Acme GmbH", "DE", "desk@acme.example")


def test_partner_members_add_and_remove(db_url, db, admin):
    acme(admin, "UACME1")
    vendor = {"VENDOR_TEAM_ID": "T0VENDOR"}
    added = cli(
        db_url, "partner", "members", "add", "Acme GmbH", "UACME2", "T0VENDOR:UACME3",
        "T0ACME:UACME4", "UACME1", **vendor,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "added 3 member(s)" in added.stdout and "1 already a member" in added.stdout
    with db.session() as s:
        members = sorted(s.scalars(select(PartnerMember.slack_user_id)))
    # the admin's home is VENDOR_TEAM_ID: its users are stored as bare user ids
    assert members == ["T0ACME:UACME4", "UACME1", "UACME2", "UACME3"]

    removed = cli(db_url, "partner", "members", "remove", "Acme GmbH", "UACME2", "T0ACME:UACME4")
    assert removed.returncode == 0, removed.stderr
    with db.session() as s:
        assert sorted(s.scalars(select(PartnerMember.slack_user_id))) == ["UACME1", "UACME3"]


@pytest.mark.reliability("bad input", "partner members add/remove: bad ids, others' or no members")
def test_partner_members_bad_input_changes_nothing(db_url, db, admin, tried):
    acme(admin, "UACME1")
    admin.add_partner("Beta", "DE", ["UBETA1"], contact_email="desk@beta.example")
    cases = [
        (("add", "Acme GmbH", "UNEW1", "not-a-user"), "member"),
        (("add", "Acme GmbH", "UNEW1", "UBETA1"), "already a member of another partner"),
        (("remove", "Acme GmbH", "UACME1", "UBETA1"), "not a member of 'Acme GmbH'"),
        (("add", "Nobody", "UNEW1"), "No partner named"),
    ]
    for args, words in cases:
        tried()
        done = cli(db_url, "partner", "members", *args)
        assert done.returncode == 2, done.stderr
        assert words in one_line(done)
    usage = cli(db_url, "partner", "members", "add", "Acme GmbH")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    with db.session() as s:
        assert sorted(s.scalars(select(PartnerMember.slack_user_id))) == ["UACME1", "UBETA1"]


def test_partner_deactivate_expires_live_claims_with_a_notice_and_keeps_history(
    db_url, db, admin, clock
):
    pid = acme(admin, "UACME1")
    service = PreregistrationService(Database(db_url), clock)
    valid = service.preregister("UACME1", form(email="one@customer.de")).preregistration
    review = service.preregister(
        "UACME1", form(email="two@customer.fr", mobile="+33 6 12 34 56 78")
    ).preregistration
    assert (valid.status, review.status) == ("preregistered", "under_review")

    done = cli(db_url, "partner", "deactivate", "Acme GmbH")
    assert done.returncode == 0, done.stderr
    assert "2 live preregistration(s) expired" in done.stdout
    assert "DEACTIVATED" in cli(db_url, "partner", "list").stdout
    with db.session() as s:
        assert s.get(Partner, pid).active is False
        rows = s.scalars(select(Preregistration).order_by(Preregistration.id)).all()
        assert [r.status for r in rows] == ["expired", "expired"]
        notices = sorted(s.scalars(select(Delivery.dedupe_key).where(Delivery.kind == "expired")))
        assert notices == [f"expired:{valid.id}", f"expired:{review.id}"]
        history = s.scalars(select(AuditEvent.action).where(AuditEvent.partner_id == pid)).all()
        assert history.count("preregister") == 2 and history.count("expire") == 2

    with pytest.raises(Refused) as refused:
        service.preregister("UACME1", form(email="three@customer.de"))
    assert refused.value.code == "partner_inactive"
    assert "taken out of the partner program" in refused.value.message
    assert service.check("UACME1", "three@customer.de").code == "partner_inactive"
    shown = cli(db_url, "partner", "show", "Acme GmbH")
    assert re.search(r"state:\s+deactivated", shown.stdout)


# --- managers, workspaces, preregistrations ----------------------------------------------------


def test_manager_list_and_remove(db_url, db, admin):
    admin.add_manager("UMGR1", "eco@vendor.example")
    admin.add_manager("T0OTHER:UMGR2")
    listed = cli(db_url, "manager", "list")
    assert listed.returncode == 0, listed.stderr
    assert "UMGR1\teco@vendor.example\tsince " in listed.stdout
    as_json = json.loads(cli(db_url, "manager", "list", "--json").stdout)
    assert [(m["slack_user_id"], m["email"]) for m in as_json] == [
        ("UMGR1", "eco@vendor.example"),
        ("T0OTHER:UMGR2", None),
    ]
    assert cli(db_url, "manager", "remove", "UMGR1").stdout.strip() == "manager UMGR1 removed"
    again = cli(db_url, "manager", "remove", "UMGR1")
    assert again.returncode == 2 and "not a registered manager" in one_line(again)
    assert [
        m["slack_user_id"] for m in json.loads(cli(db_url, "manager", "list", "--json").stdout)
    ] == ["T0OTHER:UMGR2"]


def test_list_commands_print_json(db_url, db, admin):
    acme(admin, "UACME1")
    partners = json.loads(cli(db_url, "partner", "list", "--json").stdout)
    assert partners == [
        {
            "id": partners[0]["id"],
            "name": "Acme GmbH",
            "country": "DE",
            "contact_email": "desk@acme.example",
            "contact_mobile": None,
            "members": ["UACME1"],
            "live": 0,
            "active": True,
        }
    ]
    workspaces = cli(db_url, "workspaces", "list", "--json")
    assert workspaces.returncode == 0, workspaces.stderr
    assert json.loads(workspaces.stdout) == []


def test_preregistration_show_by_email_and_id(db_url, db, admin, clock):
    acme(admin, "UACME1")
    service = PreregistrationService(Database(db_url), clock)
    p = service.preregister("UACME1", form(email="Clara@Customer.de")).preregistration
    service.delete("UACME1", [p.id])
    again = service.preregister("UACME1", form(email="clara@customer.de")).preregistration

    by_email = cli(db_url, "preregistration", "show", "CLARA@customer.de")
    assert by_email.returncode == 0, by_email.stderr
    blocks = by_email.stdout.split("\n\n")
    assert len(blocks) == 2
    assert re.search(rf"id:\s+{p.id}\n", blocks[0]) and re.search(r"status:\s+deleted", blocks[0])
    assert re.search(r"status:\s+preregistered", blocks[1])
    assert "\tUACME1\tpreregister\tpreregistered" in blocks[0]
    assert "\tUACME1\tdelete\t" in blocks[0]

    by_id = json.loads(cli(db_url, "preregistration", "show", str(again.id), "--json").stdout)
    assert [(r["id"], r["status"], r["partner"]) for r in by_id] == [
        (again.id, "preregistered", "Acme GmbH")
    ]
    assert [h["action"] for h in by_id[0]["history"]] == ["preregister"]
    missing = cli(db_url, "preregistration", "show", "nobody@customer.de")
    assert missing.returncode == 2 and "No preregistration" in one_line(missing)


# --- one line, not a traceback -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.reliability("fault", "database unreachable, refusing or missing: one line, exit 1")
def test_unreachable_or_refusing_database_is_one_line(tmp_path, tried):
    urls = [
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/prereg",  # nothing listens
        "postgresql+psycopg://postgres@127.0.0.1:5432/no_such_database_o2",  # refuses
        f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}",
    ]
    for url in urls:
        for command in (("partner", "list"), ("db", "upgrade"), ("sweep",)):
            tried()
            done = cli(url, *command)
            assert done.returncode == 1, (url, command, done.stderr)
            assert "cannot use the database" in one_line(done)
    bad = cli("nonsense://", "partner", "list")
    assert bad.returncode == 2 and "DATABASE_URL is not a database URL" in one_line(bad)


@pytest.mark.reliability("fault", "migration fails (database newer than the code)")
def test_a_failing_migration_is_one_line(tmp_path, tried):
    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('0099_from_the_future')")
    for command in (("partner", "list"), ("serve",)):  # serve migrates in a child process
        tried()
        done = cli(f"sqlite:///{path}", *command, PORT=str(free_port()), **SERVE_ENV)
        assert done.returncode == 1, (command, done.stderr)
        assert one_line(done).startswith("prereg-bot: database migration failed: ")


@pytest.mark.reliability("fault", "serve with the database unreachable or not a database URL")
def test_serve_on_an_unusable_database_is_one_line(tmp_path, tried):
    """serve prepares its database in a child process (issue 15); what it meets there is the
    same one line and exit code as before."""
    tried(2)
    down = cli(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/prereg", "serve", **SERVE_ENV
    )
    assert down.returncode == 1
    assert one_line(down).startswith("prereg-bot: cannot use the database ")
    bad = cli("nonsense://", "serve", **SERVE_ENV)
    assert bad.returncode == 2
    assert one_line(bad).startswith("prereg-bot: DATABASE_URL is not a database URL")


@pytest.mark.reliability("fault", "serve on a port already taken")
def test_serve_on_a_taken_port_is_one_line(tmp_path, tried):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tried()
        done = cli(f"sqlite:///{tmp_path / 'x.db'}", "serve", PORT=str(port), **SERVE_ENV)
    assert done.returncode == 1
    assert one_line(done) == (
        f"prereg-bot: port {port} is already in use: stop what listens there or set PORT "
        "to another port"
    )


@pytest.mark.reliability("bad input", ".env.example placeholder left in a variable")
@pytest.mark.parametrize("name", sorted(PLACEHOLDERS))
def test_a_placeholder_value_is_refused_in_one_line(tmp_path, name, tried):
    env = {**SERVE_ENV, name: PLACEHOLDERS[name]}
    tried()
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    assert name in str(refused.value) and ".env.example" in str(refused.value)
    if name == "SLACK_BOT_TOKEN":
        done = cli(f"sqlite:///{tmp_path / 'x.db'}", "serve", **env)
        assert done.returncode == 2
        assert one_line(done).startswith("prereg-bot: SLACK_BOT_TOKEN still holds the example")
        assert not (tmp_path / "x.db").exists()


def _env_example() -> dict[str, str]:
    """Every variable of .env.example, commented out or not, with its example value."""
    found = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"#?\s*([A-Z][A-Z0-9_]+)=(\S*)", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def test_env_example_lists_every_readme_variable_and_its_placeholders_are_known():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    first_cells = [ln.split("|")[1] for ln in section.splitlines() if ln.startswith("| `")]
    documented = {n for cell in first_cells for n in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}
    assert len(documented) > 20
    example = _env_example()
    assert documented - set(example) == set()
    for name, value in PLACEHOLDERS.items():
        assert example.get(name) == value, name


# --- sweep --at in the future --------------------------------------------------------------------


@pytest.mark.reliability("bad input", "sweep --at in the future without --yes and no TTY")
def test_sweep_at_a_future_instant_needs_yes(db_url, db, admin, clock, tried):
    acme(admin, "UACME1")
    service = PreregistrationService(Database(db_url), clock)
    p = service.preregister("UACME1", form()).preregistration
    later = (p.expires_at.replace(year=p.expires_at.year + 1)).isoformat()
    tried()
    refused = cli(db_url, "sweep", "--at", later)
    assert refused.returncode == 2
    line = one_line(refused)
    assert "ahead of now" in line and "--yes" in line
    assert service.view(p.id).status == "preregistered"

    done = cli(db_url, "sweep", "--at", later, "--yes")
    assert done.returncode == 0, done.stderr
    assert "expired 1" in done.stdout
    assert service.view(p.id).status == "expired"


def test_sweep_at_now_or_the_past_needs_no_confirmation(db_url, db):
    done = cli(db_url, "sweep", "--at", "2026-01-01T00:00:00Z")
    assert done.returncode == 0, done.stderr


# --- make test leaves the tree clean -----------------------------------------------------------


def _make(*args: str) -> str:
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_test_writes_the_report_under_build_and_make_docs_refreshes_it():
    test = _make("test")
    assert "--reliability-report=build/reliability.md" in test
    assert "docs/reliability.md" not in test
    skip = _make("test", "PYTEST_ARGS=-k 'not postgres_restart'")
    assert "-k 'not postgres_restart'" in skip or '-k "not postgres_restart"' in skip
    assert "--reliability-report=docs/reliability.md" in _make("docs")
    assert "build/" in (ROOT / ".gitignore").read_text().splitlines()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.reliability("bad input", "PREREG_ACK_BUDGET_MS outside 0..2500 or not a number")
@pytest.mark.parametrize("value", ["3000", "-1", "fast"])
def test_an_ack_budget_slack_could_not_wait_for_is_refused_in_one_line(value, tried):
    tried()
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({**SERVE_ENV, "PREREG_ACK_BUDGET_MS": value})
    assert "PREREG_ACK_BUDGET_MS" in str(refused.value)
    assert Settings.from_env({**SERVE_ENV, "PREREG_ACK_BUDGET_MS": "800"}).ack_budget_ms == 800
