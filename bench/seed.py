"""Bulk seeding for the benchmarks: partners and preregistrations straight in SQL
(PostgreSQL generate_series), so 100,000 or 1,000,000 rows take seconds, not minutes."""

from __future__ import annotations

from sqlalchemy import create_engine, text

SEED_PARTNERS_SQL = """
INSERT INTO partners (name, country, contact_email, lock_version, created_at)
SELECT 'Seed partner ' || g, 'DE', 'desk' || g || '@seed.example', 0, now()
FROM generate_series(1, :partners) AS g
"""

# Statuses spread like a real table: most rows are history (expired, associated, deleted).
SEED_PREREGISTRATIONS_SQL = """
INSERT INTO preregistrations (
    partner_id, full_name, email, email_norm, mobile, send_invitation, association_type,
    status, customer_country, submitted_by, submitted_at, expires_at, invite_failed_attempts
)
SELECT
    1 + (g % :partners),
    'Seed customer ' || g,
    'seed' || g || '@customer.example',
    'seed' || g || '@customer.example',
    '+4915100000000',
    false,
    'reseller',
    CASE WHEN g % 20 < 8 THEN 'preregistered'
         WHEN g % 20 < 13 THEN 'expired'
         WHEN g % 20 < 17 THEN 'associated'
         ELSE 'deleted' END,
    'DE',
    'USEED',
    now() - interval '3 days',
    CASE WHEN g % 20 < 8 THEN now() + interval '12 days' ELSE now() - interval '3 days' END,
    0
FROM generate_series(1, :rows) AS g
"""


def seed(url: str, rows: int, partners: int | None = None) -> None:
    """`rows` preregistrations over enough partners that none passes R4's cap of 100 live."""
    partners = partners or max(1, rows // 50)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(SEED_PARTNERS_SQL), {"partners": partners})
        conn.execute(text(SEED_PREREGISTRATIONS_SQL), {"rows": rows, "partners": partners})
        conn.execute(text("ANALYZE"))
    engine.dispose()
