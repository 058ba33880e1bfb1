"""The session settings of the app's PostgreSQL connections (store/db.py `_pg_options`): the
waits the app chose, JIT compilation off, and an operator's `?options=` in DATABASE_URL wins."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine, text

from store.db import Waits, make_engine

WAITS = Waits(lock=1.5, statement=7.0, busy=2.0)


def _settings(url: str, *names: str) -> dict[str, str]:
    engine = make_engine(url, WAITS)
    try:
        with engine.connect() as conn:
            return {name: conn.execute(text(f"SHOW {name}")).scalar_one() for name in names}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_sessions_wait_as_chosen_and_compile_nothing(pg_only_url: str) -> None:
    assert _settings(pg_only_url, "lock_timeout", "statement_timeout", "jit") == {
        "lock_timeout": "1500ms",
        "statement_timeout": "7s",
        "jit": "off",
    }


def _compiled(engine: Engine) -> bool:
    """Whether a statement past the JIT threshold was compiled (its plan has a JIT section)."""
    try:
        with engine.connect() as conn:
            plan = conn.execute(text("EXPLAIN (ANALYZE) SELECT count(*) FROM pg_class"))
            return any(line.startswith("JIT") for (line,) in plan)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_statement_past_the_jit_threshold_is_not_compiled(pg_only_url: str) -> None:
    # jit_above_cost=0 makes every statement pass the threshold, as a misestimated page did.
    url = pg_only_url + "?options=-c%20jit_above_cost%3D0"
    if not _compiled(create_engine(url)):
        pytest.skip("this PostgreSQL server has no JIT provider (llvmjit) installed")
    assert not _compiled(make_engine(url, WAITS))


@pytest.mark.postgres
def test_the_operators_options_win(pg_only_url: str) -> None:
    url = pg_only_url + "?options=-c%20jit%3Don%20-c%20lock_timeout%3D250"
    assert _settings(url, "lock_timeout", "jit") == {"lock_timeout": "250ms", "jit": "on"}
