"""the language of a partner's notices and emails, and of a channel's posts

Revision ID: 0008_language
Revises: 0007_desk
Create Date: 2026-11-29

`/preregister language zh|en` sets them (bot/i18n.py). NULL means English.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_language"
down_revision = "0007_desk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
    op.create_table(
        "channel_languages",
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel"),
    )


def downgrade() -> None:
    op.drop_table("channel_languages")
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("language")
