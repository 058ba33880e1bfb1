"""Creating and dropping throwaway PostgreSQL databases (for the tests and the benchmarks)."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def create_database(admin_url: str, name: str) -> str:
    """Creates database `name` on the server of `admin_url`; returns its URL."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, name: str) -> None:
    """Drops database `name`, ending any session still connected to it. A fresh engine each
    time, so a server restart in between leaves no stale pooled connection behind."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()
