"""The reads behind the visible answers (docs/performance.md, ninth session): the same answers
on both backends, and on SQLite the indexes they were written for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.desk import Desk
from store import preregistrations as prereg_store
from store.db import Database
from tests.conftest import T0
from tests.helpers import form


@contextmanager
def statements(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The SQL (and parameters) the block sends to the database."""
    seen: list[tuple[str, Any]] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def sqlite_plans(db: Database, read: Callable[[], object], table_word: str) -> list[str]:
    """SQLite's query plans of the statements `read` sends that name `table_word`."""
    with statements(db) as seen:
        read()
    plans = []
    with db.engine.connect() as conn:
        for sql, params in seen:
            if table_word in sql and sql.lstrip().upper().startswith(("SELECT", "WITH")):
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
                plans.append(" / ".join(row[-1] for row in rows))
    return plans


@pytest.fixture
def partners(admin, service) -> dict[str, int]:
    """Busy (three claims, one of them lapsed: still preregistered, validity ended) and
    Quiet (one claim)."""
    ids = {
        "Busy": admin.add_partner("Busy", "DE", ["UBUSY1"], contact_email="desk@busy.example"),
        "Quiet": admin.add_partner("Quiet", "DE", ["UQUIET1"], contact_email="desk@quiet.ex"),
    }
    made = [service.preregister("UBUSY1", form(email=f"b{i}@customer.de")) for i in range(3)]
    service.preregister("UQUIET1", form(email="q@customer.de"))
    with service.db.session() as s:
        prereg_store.transition(
            s,
            made[0].preregistration.id,
            ("preregistered",),
            expires_at=T0 - timedelta(days=1),
        )
    return ids


def test_program_corrects_quota_use_for_lapsed_claims_in_both_orders(service, partners):
    desk = Desk(service)
    by_quota, total = desk.program("quota", 0, 5)
    by_name, _ = desk.program("name", 0, 5)
    assert total == 2
    assert [(r.name, r.quota_used) for r in by_quota] == [("Busy", 2), ("Quiet", 1)]
    assert [(r.name, r.quota_used) for r in by_name] == [("Busy", 2), ("Quiet", 1)]
    assert by_quota[0].counts == {"preregistered": 3}


# SQLite's planner only: PostgreSQL reads the partial index either way.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_program_reads_lapsed_claims_from_the_partial_index_on_sqlite(db, service, partners):
    plans = sqlite_plans(db, lambda: Desk(service).program("quota", 0, 5), "preregistrations")
    program = [p for p in plans if "ix_partners_quota" in p]
    assert program and all("ix_preregistrations_expiring" in p for p in program), plans
    assert not any("ix_preregistrations_partner_status" in p for p in program), plans


def test_review_queue_is_oldest_first_in_one_query_with_the_partners(db, service, clock, partners):
    abroad = "+33 6 12 34 56 78"  # a customer in France, partners in Germany: review first
    service.preregister("UQUIET1", form(email="r1@customer.fr", mobile=abroad))
    clock.advance(timedelta(minutes=1))
    service.preregister("UBUSY1", form(email="r2@customer.fr", mobile=abroad))
    queue = service.review_queue(10)
    assert [(p.email, p.partner_name) for p in queue] == [
        ("r1@customer.fr", "Quiet"),
        ("r2@customer.fr", "Busy"),
    ]
    assert service.review_queue_total() == 2
    with statements(db) as seen:
        service.review_queue(10)
    selects = [sql for sql, _ in seen if sql.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, selects  # the partners come with the rows, not a query per row
    if not db.is_postgres:
        plans = sqlite_plans(db, lambda: service.review_queue(10), "preregistrations")
        assert "ix_preregistrations_review_queue" in plans[0], plans


def test_list_total_counts_every_matching_row_beyond_the_page(service, partners):
    page = service.list_customers("UBUSY1", ("preregistered",), offset=1, limit=1)
    assert (len(page.items), page.total) == (1, 3)
    everything = service.list_customers("UBUSY1", None, offset=0, limit=2)
    assert (len(everything.items), everything.total) == (2, 3)
