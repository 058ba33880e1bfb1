"""partners.quota_held: each partner's rows in the quota statuses, kept by triggers

Revision ID: 0010_quota_held
Revises: 0009_scale
Create Date: 2026-11-29

The managers' program overview sorts the partners by quota use. It counted the live rows of
every partner to do so (one index entry per live row, a sort of every partner): 2.4x slower at
10,000 partners than at 100 (bench/scale.py). Now each partner row carries the count of its
preregistrations in QUOTA_STATUSES, `ix_partners_quota` (quota_held DESC, name) serves the
sort, and the overview reads its page (store/desk.py `program_page`).

The count is kept by the database itself, in the transaction that changes a row, whatever the
statement (an ORM flush, a conditional UPDATE, a bulk load, a DELETE): triggers on
preregistrations for INSERT, DELETE and an UPDATE of status or partner_id. Nothing in Python
writes it, so no code path can forget it. On PostgreSQL an INSERT or DELETE statement adds its
rows per partner at once (transition tables), so a bulk load updates each partner once. Claims
whose validity has lapsed but that the sweep has not expired yet still count here; the overview
subtracts them when it reads (a time-dependent count cannot be stored).

`ix_preregistrations_quota` (0009), which served the old count, goes: nothing else needs it
(a partner's own rows are read through ix_preregistrations_partner_status), and PostgreSQL
combined it with ix_preregistrations_expiring to find the lapsed claims, reading its 150,000
entries at a million rows to find none.

SQLite: a later migration that rebuilds `preregistrations` (batch "move and copy") drops its
triggers; it must create them again (`create_triggers`).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_quota_held"
down_revision = "0009_scale"
branch_labels = None
depends_on = None

QUOTA = "('under_review', 'action_required', 'preregistered')"

_PG = [
    f"""
    CREATE FUNCTION preregistrations_quota_rows() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            UPDATE partners p SET quota_held = p.quota_held + d.n
            FROM (SELECT partner_id, count(*) AS n FROM new_rows
                  WHERE status IN {QUOTA} GROUP BY partner_id) d
            WHERE p.id = d.partner_id;
        ELSE
            UPDATE partners p SET quota_held = p.quota_held - d.n
            FROM (SELECT partner_id, count(*) AS n FROM old_rows
                  WHERE status IN {QUOTA} GROUP BY partner_id) d
            WHERE p.id = d.partner_id;
        END IF;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION preregistrations_quota_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.status IN {QUOTA} THEN
            UPDATE partners SET quota_held = quota_held - 1 WHERE id = OLD.partner_id;
        END IF;
        IF NEW.status IN {QUOTA} THEN
            UPDATE partners SET quota_held = quota_held + 1 WHERE id = NEW.partner_id;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER preregistrations_quota_insert AFTER INSERT ON preregistrations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION preregistrations_quota_rows()
    """,
    """
    CREATE TRIGGER preregistrations_quota_delete AFTER DELETE ON preregistrations
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION preregistrations_quota_rows()
    """,
    """
    CREATE TRIGGER preregistrations_quota_update AFTER UPDATE OF status, partner_id
    ON preregistrations FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.partner_id IS DISTINCT FROM NEW.partner_id)
    EXECUTE FUNCTION preregistrations_quota_update()
    """,
]

_SQLITE = [
    f"""
    CREATE TRIGGER preregistrations_quota_insert AFTER INSERT ON preregistrations
    FOR EACH ROW WHEN NEW.status IN {QUOTA}
    BEGIN
        UPDATE partners SET quota_held = quota_held + 1 WHERE id = NEW.partner_id;
    END
    """,
    f"""
    CREATE TRIGGER preregistrations_quota_delete AFTER DELETE ON preregistrations
    FOR EACH ROW WHEN OLD.status IN {QUOTA}
    BEGIN
        UPDATE partners SET quota_held = quota_held - 1 WHERE id = OLD.partner_id;
    END
    """,
    f"""
    CREATE TRIGGER preregistrations_quota_update AFTER UPDATE OF status, partner_id
    ON preregistrations FOR EACH ROW
    WHEN OLD.status IS NOT NEW.status OR OLD.partner_id IS NOT NEW.partner_id
    BEGIN
        UPDATE partners SET quota_held = quota_held - 1
        WHERE id = OLD.partner_id AND OLD.status IN {QUOTA};
        UPDATE partners SET quota_held = quota_held + 1
        WHERE id = NEW.partner_id AND NEW.status IN {QUOTA};
    END
    """,
]

TRIGGERS = (
    "preregistrations_quota_insert",
    "preregistrations_quota_delete",
    "preregistrations_quota_update",
)


def create_triggers() -> None:
    for statement in _PG if op.get_bind().dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)


def upgrade() -> None:
    op.add_column(
        "partners", sa.Column("quota_held", sa.Integer(), server_default="0", nullable=False)
    )
    # Triggers first, then the backfill, in this migration's transaction: a row changed
    # meanwhile waits for it (PostgreSQL) or cannot be written at all (SQLite).
    create_triggers()
    op.execute(
        "UPDATE partners SET quota_held = (SELECT count(*) FROM preregistrations r "
        f"WHERE r.partner_id = partners.id AND r.status IN {QUOTA})"
    )
    op.create_index("ix_partners_quota", "partners", [sa.text("quota_held DESC"), "name"])
    op.drop_index("ix_preregistrations_quota", "preregistrations")


def downgrade() -> None:
    op.create_index(
        "ix_preregistrations_quota",
        "preregistrations",
        ["partner_id"],
        postgresql_where=sa.text(f"status IN {QUOTA}"),
        sqlite_where=sa.text(f"status IN {QUOTA}"),
    )
    op.drop_index("ix_partners_quota", "partners")
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGERS:
        op.execute(
            f"DROP TRIGGER {name} ON preregistrations" if postgres else f"DROP TRIGGER {name}"
        )
    if postgres:
        op.execute("DROP FUNCTION preregistrations_quota_update()")
        op.execute("DROP FUNCTION preregistrations_quota_rows()")
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("quota_held")
