"""Apply Alembic migrations programmatically (`prereg-bot db upgrade`, and at start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from store.db import Database, make_engine, normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"

# Several app processes may start at once against one PostgreSQL: serialise their upgrades.
_PG_LOCK_KEY = 724_011_001


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Back to `revision` (the migration tests step each migration down and up again). A plain
    engine: SQLite's batch mode rebuilds tables, which its foreign keys (on in make_engine)
    would refuse."""
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def upgrade_database(db: Database) -> None:
    upgrade(db.url)


__all__ = ["upgrade", "downgrade", "upgrade_database", "alembic_config", "make_engine"]
