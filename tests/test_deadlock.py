"""A deadlock between two transactions is a wait that ran out, as a lock timeout is: the
victim's transaction is rolled back whole and the person is told to try again (DatabaseBusy).
The quota counter's triggers (migration 0010) made it possible for two submissions that each
expire a lapsed claim of the other's partner."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from store.db import DatabaseBusy, Waits, make_engine


@pytest.mark.postgres
def test_a_deadlock_is_told_as_busy_and_commits_nothing(pg_only_url: str) -> None:
    # A lock wait longer than PostgreSQL's deadlock_timeout (1 s), so the deadlock is found
    # before either wait runs out.
    engine = make_engine(pg_only_url, Waits(lock=10.0, statement=30.0, busy=10.0))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE deadlock_probe (id int PRIMARY KEY, v int NOT NULL)"))
        conn.execute(text("INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)"))
    both_hold_one = threading.Barrier(2, timeout=10)

    def update_in_order(first: int, second: int) -> str:
        try:
            with engine.begin() as conn:
                sql = text("UPDATE deadlock_probe SET v = v + 1 WHERE id = :id")
                conn.execute(sql, {"id": first})
                both_hold_one.wait()
                conn.execute(sql, {"id": second})
        except DatabaseBusy as busy:
            return "busy " + str(getattr(busy.orig, "sqlstate", ""))
        return "committed"

    try:
        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(update_in_order, (1, 2), (2, 1)))
        assert outcomes == ["busy 40P01", "committed"]
        with engine.connect() as conn:
            # The victim's first update was rolled back with it: one transaction's two updates.
            assert conn.execute(text("SELECT sum(v) FROM deadlock_probe")).scalar_one() == 2
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE deadlock_probe"))
        engine.dispose()
