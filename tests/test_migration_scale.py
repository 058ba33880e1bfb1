"""Migration 0009 (the indexes bench/scale.py found missing at a million rows): up and down on
both backends, and the models say the same as the migration."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from store.migrate import downgrade, upgrade
from store.models import Base
from tests.conftest import PG_ADMIN_URL
from tests.pgdb import create_database, drop_database

NEW = {
    "deliveries": {"ix_deliveries_leased"},
    "preregistrations": {
        "ix_preregistrations_quota",
        "ix_preregistrations_retention",
        "ix_preregistrations_review_queue",
    },
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own: this test downgrades it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    name = f"prereg_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(PG_ADMIN_URL, name)
    try:
        yield url
    finally:
        drop_database(PG_ADMIN_URL, name)


def _indexes(url: str) -> dict[str, set[str]]:
    """From the catalog: SQLAlchemy's reflection skips SQLite's expression indexes."""
    engine = create_engine(url)
    query = (
        "SELECT indexname FROM pg_indexes WHERE tablename = :t"
        if engine.dialect.name == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
    )
    try:
        with engine.connect() as conn:
            return {t: set(conn.execute(text(query), {"t": t}).scalars()) for t in NEW}
    finally:
        engine.dispose()


def test_0009_adds_the_indexes_and_takes_them_away_again(fresh_url):
    upgrade(fresh_url, "0008_language")
    before = _indexes(fresh_url)
    assert all(not (NEW[t] & before[t]) for t in NEW)

    upgrade(fresh_url, "0009_scale")
    after = _indexes(fresh_url)
    assert all(NEW[t] <= after[t] for t in NEW)

    downgrade(fresh_url, "0008_language")
    assert _indexes(fresh_url) == before


def _due_columns(url: str) -> str:
    engine = create_engine(url)
    query = (
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_deliveries_due'"
        if engine.dialect.name == "postgresql"
        else "SELECT sql FROM sqlite_master WHERE name = 'ix_deliveries_due'"
    )
    try:
        with engine.connect() as conn:
            return " ".join(str(conn.execute(text(query)).scalar_one()).split())
    finally:
        engine.dispose()


def test_0009_orders_the_due_index_by_id_too(fresh_url):
    upgrade(fresh_url, "0008_language")
    assert "(next_attempt_at)" in _due_columns(fresh_url)
    upgrade(fresh_url)
    assert "(next_attempt_at, id)" in _due_columns(fresh_url)


def test_the_models_name_the_same_indexes():
    for table, names in NEW.items():
        names = names - {"ix_preregistrations_quota"}  # dropped again by 0010
        assert names <= {i.name for i in Base.metadata.tables[table].indexes}
