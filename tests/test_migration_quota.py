"""Migration 0010 (partners.quota_held and its triggers): the backfill counts the rows already
there, the triggers keep it from then on, down takes it all away again, on both backends; the
models say the same as the migration."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from store.migrate import downgrade, upgrade
from store.models import Base
from tests.conftest import T0
from tests.test_migration_scale import fresh_url  # noqa: F401  (the fixture)

TRIGGERS = (
    "preregistrations_quota_insert",
    "preregistrations_quota_delete",
    "preregistrations_quota_update",
)
ROW = (
    "INSERT INTO preregistrations (partner_id, full_name, email, email_norm, email_domain, "
    "mobile, send_invitation, association_type, status, submitted_by, submitted_at, "
    "invite_failed_attempts) VALUES (:p, 'C', :e, :e, 'customer.de', '+4915100000000', "
    "false, 'reseller', :s, 'U', :at, 0)"
)


def _execute(url: str, *statements: tuple[str, dict]) -> list:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            results = [conn.execute(text(sql), params) for sql, params in statements]
            return [r.all() if r.returns_rows else None for r in results]
    finally:
        engine.dispose()


def _partner(name: str) -> tuple[str, dict]:
    return (
        "INSERT INTO partners (name, country, lock_version, created_at) "
        "VALUES (:n, 'DE', 0, :at) RETURNING id",
        {"n": name, "at": T0},
    )


def _claims(partner: int, tag: str, *statuses: str) -> list[tuple[str, dict]]:
    return [
        (ROW, {"p": partner, "e": f"{tag}{partner}-{i}@customer.de", "s": status, "at": T0})
        for i, status in enumerate(statuses)
    ]


def _trigger_names(url: str) -> set[str]:
    """This migration's triggers that the database has."""
    engine = create_engine(url)
    query = (
        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        if engine.dialect.name == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    )
    try:
        with engine.connect() as conn:
            return set(conn.execute(text(query)).scalars()) & set(TRIGGERS)
    finally:
        engine.dispose()


def _columns(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT * FROM partners WHERE 1 = 0")).keys())
    finally:
        engine.dispose()


def test_0010_backfills_keeps_and_takes_away_the_quota_count(fresh_url):  # noqa: F811
    upgrade(fresh_url, "0009_scale")
    [[(a,)], [(b,)]] = _execute(fresh_url, _partner("A"), _partner("B"))
    _execute(
        fresh_url,
        *_claims(a, "old", "preregistered", "under_review", "action_required", "expired"),
        *_claims(b, "old", "deleted", "rejected", "associated"),
    )
    upgrade(fresh_url)
    held = "SELECT name, quota_held FROM partners ORDER BY name"
    assert _execute(fresh_url, (held, {}))[0] == [("A", 3), ("B", 0)]
    assert {"ix_partners_quota"} <= {
        i for i in _index_names(fresh_url) if i.startswith("ix_partners")
    }
    _execute(
        fresh_url,
        *_claims(
            b, "new", "expired", "preregistered"
        ),  # new rows after the upgrade: the triggers count
        ("UPDATE preregistrations SET status = 'expired' WHERE status = 'under_review'", {}),
    )
    assert _execute(fresh_url, (held, {}))[0] == [("A", 2), ("B", 1)]
    assert _trigger_names(fresh_url) == set(TRIGGERS)
    assert "ix_preregistrations_quota" not in _index_names(fresh_url, "preregistrations")

    downgrade(fresh_url, "0009_scale")
    assert "quota_held" not in _columns(fresh_url)
    assert _trigger_names(fresh_url) == set()
    assert "ix_partners_quota" not in _index_names(fresh_url)
    assert "ix_preregistrations_quota" in _index_names(fresh_url, "preregistrations")
    _execute(fresh_url, *_claims(a, "down", "preregistered"))  # writes work without the column


def _index_names(url: str, table: str = "partners") -> set[str]:
    engine = create_engine(url)
    query = (
        "SELECT indexname FROM pg_indexes WHERE tablename = :t"
        if engine.dialect.name == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
    )
    try:
        with engine.connect() as conn:
            return set(conn.execute(text(query), {"t": table}).scalars())
    finally:
        engine.dispose()


def test_the_models_have_the_counter_and_its_index():
    partners = Base.metadata.tables["partners"]
    assert "quota_held" in partners.c
    assert "ix_partners_quota" in {i.name for i in partners.indexes}
    rows = Base.metadata.tables["preregistrations"]
    assert "ix_preregistrations_quota" not in {i.name for i in rows.indexes}
