"""personal data retention: a keyed hash of the email kept after erasure

Revision ID: 0006_retention
Revises: 0005
Create Date: 2026-12-10

The sweep erases the name, email and mobile of preregistrations that ended longer ago than
PREREG_RETENTION_DAYS (bot/privacy.py). The row stays for counts; `email_hash` (HMAC of the
normalised email) still tells that the same person was registered before, and `erased_at`
when the personal data went.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_retention"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("preregistrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_preregistrations_email_hash", ["email_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("preregistrations", schema=None) as batch_op:
        batch_op.drop_index("ix_preregistrations_email_hash")
        batch_op.drop_column("erased_at")
        batch_op.drop_column("email_hash")
