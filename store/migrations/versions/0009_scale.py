"""indexes for a million preregistrations: the ordered claim, retention, the review queue

Revision ID: 0009_scale
Revises: 0008_language
Create Date: 2026-11-29

Found with bench/scale.py (EXPLAIN ANALYZE at 1,000,000 rows, docs/performance.md):
- `ix_deliveries_leased`: the outbox's ordered claim skips a notice whose preregistration has
  an earlier notice leased right now; the index finds the leased ones, a few, directly
  (store/deliveries.py `leased_first`).
- `ix_deliveries_due` gains `id`: the claim reads pending notices in (next_attempt_at, id)
  order and stops at its batch; on next_attempt_at alone a burst enqueued at one instant (the
  day's digests, one per partner) was sorted in full on every claim.
- `ix_preregistrations_retention`: the sweep's retention erasure looks for ended, unerased rows
  whose end lies before the cutoff; without it each sweep read the table in id order.
- `ix_preregistrations_review_queue`: the managers' review queue, oldest first, reads the first
  page of rows under review instead of all of them.
- `ix_preregistrations_quota`: the managers' program overview sorts every partner by quota use;
  it counts the live rows per partner from this index instead of grouping the whole table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_scale"
down_revision = "0008_language"
branch_labels = None
depends_on = None

ENDED = "status IN ('deleted', 'expired', 'rejected') AND erased_at IS NULL"
QUOTA = "status IN ('under_review', 'action_required', 'preregistered')"


def _due_index(*columns: str) -> None:
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        list(columns),
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def upgrade() -> None:
    op.drop_index("ix_deliveries_due", "deliveries")
    _due_index("next_attempt_at", "id")
    op.create_index(
        "ix_deliveries_leased",
        "deliveries",
        ["claimed_until"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_preregistrations_retention",
        "preregistrations",
        [sa.text("coalesce(deleted_at, expired_at, decided_at)")],
        postgresql_where=sa.text(ENDED),
        sqlite_where=sa.text(ENDED),
    )
    op.create_index(
        "ix_preregistrations_review_queue",
        "preregistrations",
        ["submitted_at", "id"],
        postgresql_where=sa.text("status = 'under_review'"),
        sqlite_where=sa.text("status = 'under_review'"),
    )
    op.create_index(
        "ix_preregistrations_quota",
        "preregistrations",
        ["partner_id"],
        postgresql_where=sa.text(QUOTA),
        sqlite_where=sa.text(QUOTA),
    )


def downgrade() -> None:
    op.drop_index("ix_preregistrations_quota", "preregistrations")
    op.drop_index("ix_preregistrations_review_queue", "preregistrations")
    op.drop_index("ix_preregistrations_retention", "preregistrations")
    op.drop_index("ix_deliveries_leased", "deliveries")
    op.drop_index("ix_deliveries_due", "deliveries")
    _due_index("next_attempt_at")
