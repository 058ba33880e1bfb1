"""notify listeners when partners or their members change

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

PostgreSQL only: each app process keeps the member -> partner look-up in memory and LISTENs on
`prereg_directory` to drop it when any writer (the app, the CLI, an operator's SQL) changes what
it holds. The partner row's `lock_version`, bumped by every preregistration (R4), is left out.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PARTNER_COLUMNS = (
    "name, country, contact_email, contact_mobile, notice_channel_id, digest_channel_id"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION prereg_directory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('prereg_directory', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER partners_directory_changed"
        f" AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF {PARTNER_COLUMNS} ON partners"
        " FOR EACH STATEMENT EXECUTE FUNCTION prereg_directory_changed()"
    )
    op.execute(
        "CREATE TRIGGER partner_members_directory_changed"
        " AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE ON partner_members"
        " FOR EACH STATEMENT EXECUTE FUNCTION prereg_directory_changed()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER partner_members_directory_changed ON partner_members")
    op.execute("DROP TRIGGER partners_directory_changed ON partners")
    op.execute("DROP FUNCTION prereg_directory_changed()")
