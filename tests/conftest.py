"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, a fixed clock, a service.

PostgreSQL: each test session creates its own database on the server named by
PREREG_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/test) and drops it at the
end. Without a server the PostgreSQL tests skip, except under CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.admin import Admin
from bot.clock import FixedClock
from bot.rules import RuleSettings
from bot.service import PreregistrationService
from store.db import Database
from store.migrate import upgrade
from store.models import Base
from tests.pgdb import create_database, drop_database

pytest_plugins = ["tests.reliability", "tests.distributed"]

PG_ADMIN_URL = os.environ.get("PREREG_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# A Monday, 10:00 UTC: working-day arithmetic starts from a plain week.
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _pg_reason() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}: {exc}"


@contextmanager
def _migrated_pg_database(prefix: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database on the test server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = create_database(PG_ADMIN_URL, name)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(PG_ADMIN_URL, name)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    reason = _pg_reason()
    if reason:
        if IN_CI:
            pytest.fail(f"CI requires PostgreSQL: {reason}")
        pytest.skip(reason)
    with _migrated_pg_database("prereg_test") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "prereg.db"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    _truncate_pg(url)
    return url


@pytest.fixture
def pg_only_url(request: pytest.FixtureRequest) -> str:
    """A clean PostgreSQL database, for tests only PostgreSQL can run (concurrency)."""
    url = request.getfixturevalue("pg_url")
    _truncate_pg(url)
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def service(db: Database, clock: FixedClock) -> PreregistrationService:
    return PreregistrationService(db, clock, RuleSettings())


@pytest.fixture
def admin(db: Database, clock: FixedClock) -> Admin:
    return Admin(db, clock)


# --- end to end: the app as users run it ----------------------------------------------------


@pytest.fixture(scope="session")
def fake_slack():
    from tests.fakeslack import FakeSlack

    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def smtp_server():
    from tests.mailbox import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def running_app(request, fake_slack, smtp_server, tmp_path_factory):
    """`prereg-bot serve` in a subprocess, one per database backend for the whole run (each test
    starts from empty tables: see `app`)."""
    from tests.slackapp import RunningApp

    workdir = tmp_path_factory.mktemp("app")
    with ExitStack() as cleanup:
        if request.param == "sqlite":
            url = f"sqlite:///{workdir / 'app.db'}"
            upgrade(url)
        else:
            request.getfixturevalue("pg_url")  # skips, or fails in CI, without a server
            # A database of its own: the app's worker polls the outbox all run long, and must
            # not claim the rows of the tests that use `pg_url` meanwhile.
            url = cleanup.enter_context(_migrated_pg_database("prereg_app"))
        app = RunningApp(url, fake_slack, smtp_server, workdir).start()
        cleanup.callback(app.stop)
        yield app


@pytest.fixture
def app(running_app, fake_slack, smtp_server):
    """A running app with empty tables, a quiet fake Slack and an empty mailbox."""
    running_app.clean()
    fake_slack.reset()
    if not smtp_server.running:
        smtp_server.start()
    smtp_server.mailbox.clear()
    return running_app


@pytest.fixture
def direct(app):
    """The running app's database, used the way the operator and the service use it."""
    from tests.slackfixtures import Direct

    d = Direct(app.db_url)
    yield d
    d.close()
