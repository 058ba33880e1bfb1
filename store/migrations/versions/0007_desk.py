"""the managers' desk: action_required (send back for information), the reviewer who took a
case, and the customer's email domain for similar requests

Revision ID: 0007_desk
Revises: 0006_retention
Create Date: 2026-12-07

`action_required` claims the customer like the other live statuses, so the partial unique
index on live emails is recreated with it. `email_domain` is filled from `email_norm` for the
rows already there and indexed with `submitted_at` (the similar-requests look-up reads one
domain's recent rows).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_desk"
down_revision = "0006_retention"
branch_labels = None
depends_on = None

OLD_LIVE = "status IN ('under_review', 'preregistered', 'associated')"
NEW_LIVE = "status IN ('under_review', 'action_required', 'preregistered', 'associated')"
COLUMNS = (
    ("email_domain", sa.String(254)),
    ("info_question", sa.Text()),
    ("info_asked_by", sa.String(64)),
    ("info_asked_at", sa.DateTime()),
    ("info_due_at", sa.DateTime()),
    ("info_answer", sa.Text()),
    ("reviewer", sa.String(64)),
    ("reviewer_at", sa.DateTime()),
)


def _live_index(where: str) -> None:
    op.create_index(
        "uq_preregistrations_live_email",
        "preregistrations",
        ["email_norm"],
        unique=True,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("preregistrations", sa.Column(name, type_, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        domain = "split_part(email_norm, '@', 2)"
    else:
        domain = "substr(email_norm, instr(email_norm, '@') + 1)"
    op.execute(f"UPDATE preregistrations SET email_domain = {domain}")
    op.create_index(
        "ix_preregistrations_email_domain", "preregistrations", ["email_domain", "submitted_at"]
    )
    op.create_index(
        "ix_preregistrations_info_due",
        "preregistrations",
        ["info_due_at"],
        postgresql_where=sa.text("status = 'action_required'"),
        sqlite_where=sa.text("status = 'action_required'"),
    )
    op.drop_index("uq_preregistrations_live_email", table_name="preregistrations")
    _live_index(NEW_LIVE)


def downgrade() -> None:
    # Rows sent back for information go back under review: the older schema has no such status.
    op.execute(
        "UPDATE preregistrations SET status = 'under_review' WHERE status = 'action_required'"
    )
    op.drop_index("uq_preregistrations_live_email", table_name="preregistrations")
    _live_index(OLD_LIVE)
    op.drop_index("ix_preregistrations_info_due", table_name="preregistrations")
    op.drop_index("ix_preregistrations_email_domain", table_name="preregistrations")
    with op.batch_alter_table("preregistrations") as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
