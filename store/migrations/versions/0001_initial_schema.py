"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_accounts",
        sa.Column("email_norm", sa.String(length=254), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("china_mainland", sa.Boolean(), nullable=False),
        sa.Column("associated_partner", sa.String(length=200), nullable=True),
        sa.Column("consumer", sa.Boolean(), nullable=False),
        sa.Column("contract", sa.Boolean(), nullable=False),
        sa.Column("cash_spend", sa.Boolean(), nullable=False),
        sa.Column("direct_sales_preregistered", sa.Boolean(), nullable=False),
        sa.Column("enterprise_master", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("email_norm"),
    )
    op.create_table(
        "managers",
        sa.Column("slack_user_id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("slack_user_id"),
    )
    op.create_table(
        "partners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=True),
        sa.Column("contact_mobile", sa.String(length=32), nullable=True),
        sa.Column("notice_channel_id", sa.String(length=32), nullable=True),
        sa.Column("digest_channel_id", sa.String(length=32), nullable=True),
        sa.Column("lock_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "slack_events",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "partner_members",
        sa.Column("slack_user_id", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("slack_user_id"),
    )
    with op.batch_alter_table("partner_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_members_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "preregistrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("full_name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("email_norm", sa.String(length=254), nullable=False),
        sa.Column("mobile", sa.String(length=32), nullable=False),
        sa.Column("send_invitation", sa.Boolean(), nullable=False),
        sa.Column("association_type", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("customer_country", sa.String(length=2), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("submitted_by", sa.String(length=32), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("review_due_at", sa.DateTime(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("associated_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_by", sa.String(length=32), nullable=True),
        sa.Column("expired_at", sa.DateTime(), nullable=True),
        sa.Column("invited_at", sa.DateTime(), nullable=True),
        sa.Column("request_key", sa.String(length=128), nullable=True),
        sa.Column("review_channel_id", sa.String(length=32), nullable=True),
        sa.Column("review_message_ts", sa.String(length=32), nullable=True),
        sa.Column("invite_failed_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("invite_last_failed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
    )
    with op.batch_alter_table("preregistrations", schema=None) as batch_op:
        batch_op.create_index("ix_preregistrations_email_norm", ["email_norm"], unique=False)
        batch_op.create_index(
            "ix_preregistrations_expiring",
            ["expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'preregistered'"),
            sqlite_where=sa.text("status = 'preregistered'"),
        )
        batch_op.create_index(
            "ix_preregistrations_partner_status", ["partner_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_preregistrations_review_due",
            ["review_due_at"],
            unique=False,
            postgresql_where=sa.text("status = 'under_review'"),
            sqlite_where=sa.text("status = 'under_review'"),
        )
        batch_op.create_index(
            "uq_preregistrations_live_email",
            ["email_norm"],
            unique=True,
            postgresql_where=sa.text("status IN ('under_review', 'preregistered', 'associated')"),
            sqlite_where=sa.text("status IN ('under_review', 'preregistered', 'associated')"),
        )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("result", sa.String(length=40), nullable=False),
        sa.Column("preregistration_id", sa.Integer(), nullable=True),
        sa.Column("partner_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
        ),
        sa.ForeignKeyConstraint(
            ["preregistration_id"],
            ["preregistrations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_events_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_events_preregistration_id"), ["preregistration_id"], unique=False
        )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("preregistration_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["preregistration_id"],
            ["preregistrations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_preregistration_id"), ["preregistration_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_preregistration_id"))
        batch_op.drop_index(
            "ix_deliveries_due",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )

    op.drop_table("deliveries")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_preregistration_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_partner_id"))

    op.drop_table("audit_events")
    with op.batch_alter_table("preregistrations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_preregistrations_live_email",
            postgresql_where=sa.text("status IN ('under_review', 'preregistered', 'associated')"),
            sqlite_where=sa.text("status IN ('under_review', 'preregistered', 'associated')"),
        )
        batch_op.drop_index(
            "ix_preregistrations_review_due",
            postgresql_where=sa.text("status = 'under_review'"),
            sqlite_where=sa.text("status = 'under_review'"),
        )
        batch_op.drop_index("ix_preregistrations_partner_status")
        batch_op.drop_index(
            "ix_preregistrations_expiring",
            postgresql_where=sa.text("status = 'preregistered'"),
            sqlite_where=sa.text("status = 'preregistered'"),
        )
        batch_op.drop_index("ix_preregistrations_email_norm")

    op.drop_table("preregistrations")
    with op.batch_alter_table("partner_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_members_partner_id"))

    op.drop_table("partner_members")
    op.drop_table("slack_events")
    op.drop_table("partners")
    op.drop_table("managers")
    op.drop_table("directory_accounts")
