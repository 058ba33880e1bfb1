"""Apply Alembic migrations programmatically (`prereg-bot db upgrade`, and at start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

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


def upgrade_database(db: Database) -> None:
    upgrade(db.url)


__all__ = ["upgrade", "upgrade_database", "alembic_config", "make_engine"]
