"""Is the database's schema at the head of the code's migrations?"""

from __future__ import annotations

from functools import cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from store.db import Database
from store.migrate import alembic_config


@cache
def _heads(url: str) -> frozenset[str]:
    """The code's head revisions (read from the migration scripts once)."""
    return frozenset(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def pending_migrations(db: Database) -> tuple[str, str] | None:
    """(the database's revision, the code's head) while they differ; None when up to date."""
    heads = _heads(db.url)
    with db.engine.connect() as conn:
        current = frozenset(MigrationContext.configure(conn).get_current_heads())
    if current == heads:
        return None
    return ", ".join(sorted(current)) or "none", ", ".join(sorted(heads))
