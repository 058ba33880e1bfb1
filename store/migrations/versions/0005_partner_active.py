"""partners.active: a deactivated partner keeps its history but cannot preregister

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

`prereg-bot partner deactivate` sets it to false and expires the partner's live claims.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.add_column(
            sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("active")
