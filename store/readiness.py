"""Is the database's schema at the head of the code's migrations?

Read without Alembic: importing it (with Mako and Pygments, ~11 MB) into the serving process
for this one check, which `/readyz` runs until it first passes, would keep it there for the
life of the process (issue 15). The head is what Alembic's ScriptDirectory finds: the
revisions that no script names as its `down_revision` (tests/test_observability.py checks
the two agree); the database's revision is the row of Alembic's `alembic_version` table.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from sqlalchemy import inspect, text

from store.db import Database

VERSIONS = Path(__file__).parent / "migrations" / "versions"
VERSION_TABLE = "alembic_version"


def _assigned(script: Path) -> dict[str, object]:
    """The module-level constants `revision` and `down_revision` of a migration script."""
    found: dict[str, object] = {}
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                found[target.id] = ast.literal_eval(node.value)  # type: ignore[union-attr]
    return found


@cache
def code_heads() -> frozenset[str]:
    """The code's head revisions (read from the migration scripts once)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in VERSIONS.glob("*.py"):
        found = _assigned(script)
        if "revision" not in found:
            continue
        revisions.add(str(found["revision"]))
        down = found.get("down_revision")
        parents |= {down} if isinstance(down, str) else set(down or ())
    return frozenset(revisions - parents)


def database_heads(db: Database) -> frozenset[str]:
    """The revisions the database is at (none before its first migration)."""
    with db.engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return frozenset()
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
        return frozenset(row[0] for row in rows)


def pending_migrations(db: Database) -> tuple[str, str] | None:
    """(the database's revision, the code's head) while they differ; None when up to date."""
    heads = code_heads()
    current = database_heads(db)
    if current == heads:
        return None
    return ", ".join(sorted(current)) or "none", ", ".join(sorted(heads))
