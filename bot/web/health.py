"""`/readyz`: ready to take traffic once the schema is at the code's head and the database
answers. The migration check runs until it first passes (the schema does not go back), so a
ready process pays one `SELECT 1` per probe; `/healthz` stays the cheaper liveness probe."""

from __future__ import annotations

from store import readiness
from store.db import Database


class Readiness:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._migrated = False

    def problem(self) -> str | None:
        """None when ready, else one line saying why not."""
        if not self._db.ping():
            return "database unavailable"
        if not self._migrated:
            try:
                pending = readiness.pending_migrations(self._db)
            except Exception:  # noqa: BLE001 - the database went away between the two reads
                return "database unavailable"
            if pending:
                return f"migrations pending: database at {pending[0]}, code at {pending[1]}"
            self._migrated = True
        return None
