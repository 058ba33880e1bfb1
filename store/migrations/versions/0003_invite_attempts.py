"""addresses compared per invitation and client, for the per-client lock-out

Revision ID: 0003_invite_attempts
Revises: 0002
Create Date: 2026-12-01

A wrong address used to lock the whole invitation, so anyone holding the link could lock the
customer out. The count now lives per invitation and client (a keyed digest of the client's
network address); the invitation's own counters stay as the total that alerts the partner.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_invite_attempts"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invite_attempts",
        sa.Column("preregistration_id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["preregistration_id"], ["preregistrations.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("preregistration_id", "client"),
    )


def downgrade() -> None:
    op.drop_table("invite_attempts")
