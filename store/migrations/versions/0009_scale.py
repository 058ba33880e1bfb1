"""indexes for a million preregistrations: the ordered claim, retention, the review queue

Revision ID: 0009_scale
Revises: 0008_language
Create Date: 2026-11-29

Found with bench/scale.py (EXPLAIN ANALYZE at 1,000,000 rows, docs/performance.md):
- `ix_deliveries_leased`: the outbox's ordered claim skips a notice whose preregistration has
  an earlier notice leased right now. Its probe for leased notices read every pending row per
  candidate (a burst of 10,000 pending digests: 10,000 x 10,000); the index finds the leased
  ones, a few, directly.
- `ix_preregistrations_retention`: the sweep's retention erasure looks for ended, unerased rows
  whose end lies before the cutoff; without it each sweep read the table in id order.
- `ix_preregistrations_review_queue`: the managers' review queue, oldest first, reads the first
  page of rows under review instead of all of them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_scale"
down_revision = "0008_language"
branch_labels = None
depends_on = None

ENDED = "status IN ('deleted', 'expired', 'rejected') AND erased_at IS NULL"


def upgrade() -> None:
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


def downgrade() -> None:
    op.drop_index("ix_preregistrations_review_queue", "preregistrations")
    op.drop_index("ix_preregistrations_retention", "preregistrations")
    op.drop_index("ix_deliveries_leased", "deliveries")
