"""Engine and session factory, and the column type that keeps every timestamp in UTC.

Every wait is bounded (`Waits`): a lock held elsewhere (an operator's open transaction, a stuck
migration) makes a statement fail after a few seconds with `DatabaseBusy`, instead of holding
the caller, and the server thread it runs on, until the lock goes. The failed transaction is
rolled back, so nothing the caller was told failed commits later.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, DateTime, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, so SQLite and PostgreSQL behave alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def normalise_url(url: str) -> str:
    """Accept the common `postgres://` and `postgresql://` spellings and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Waits:
    """How long one statement may wait, in seconds."""

    lock: float
    """PostgreSQL `lock_timeout`: waiting for a row or table lock another transaction holds."""
    statement: float
    """PostgreSQL `statement_timeout`: the whole statement, its lock wait included."""
    busy: float
    """SQLite busy timeout: waiting for the database's one write lock."""


REQUEST_WAITS = Waits(lock=1.0, statement=2.0, busy=2.0)
"""The process answering Slack. Slack waits 3 s for a form's answer. This app's transactions
hold a lock for milliseconds, so a second's wait means something else holds it: answering
"busy" then leaves time for the rest of the request. No request statement takes anywhere near
2 s; one that does is cut off rather than answered after Slack gave up. SQLite's one write lock
is shared by every writer, hence the longer wait there, still inside Slack's 3 s."""

BACKGROUND_WAITS = Waits(lock=10.0, statement=60.0, busy=30.0)
"""The worker process (deliveries, the scheduled sweep) and the admin CLI: nobody waits on them
and their batches are larger, but a lock held for good still ends in an error and a retry
instead of a thread stuck forever."""

# PostgreSQL's SQLSTATEs: lock_not_available (lock_timeout), query_canceled (statement_timeout),
# deadlock_detected (the victim of two transactions locking partners in opposite orders, which
# the quota counter's triggers made possible: its transaction is rolled back whole, as on a
# timeout, so "try again" is the true answer).
_PG_BUSY = frozenset({"55P03", "57014", "40P01"})
_SQLITE_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


class DatabaseBusy(OperationalError):
    """A statement gave up waiting for a lock (or ran too long, or lost a deadlock). Its
    transaction is rolled back: nothing of it commits. An OperationalError, so code that
    retries those retries this."""


def is_busy(error: BaseException) -> bool:
    """Whether the DB-API error is a bounded wait that ran out (see `Waits`)."""
    if isinstance(error, sqlite3.OperationalError):
        return (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_BUSY
    return getattr(error, "sqlstate", None) in _PG_BUSY


def _raise_busy(context: ExceptionContext) -> BaseException | None:
    """SQLAlchemy's error hook: a wait that ran out becomes `DatabaseBusy`, statement and
    cause kept, parameters (customer data) left out of its text."""
    error = context.original_exception
    if not isinstance(error, Exception) or not is_busy(error):
        return None
    return DatabaseBusy(context.statement, None, error, hide_parameters=True)


def _pg_options(url: str, waits: Waits) -> str:
    """The libpq `options` that set the session's timeouts and turn off JIT compilation,
    before any the URL gives: a setting in DATABASE_URL (`?options=-c lock_timeout=...`) wins.

    JIT: the planner compiles a statement whose estimated cost passes `jit_above_cost`, which
    a misestimate does for statements that read a few rows: the program overview's page at
    1,000,000 rows (116,353 lapsed claims estimated, 100 found) spent 11.5 ms of its 12.5 ms
    compiling, and up to ~130 ms on a busy machine (docs/performance.md). Every statement of
    this app reads an index for a page or a key; none gains from compiling."""
    given = make_url(url).query.get("options", "")
    given = given if isinstance(given, str) else " ".join(given)
    ours = (
        f"-c lock_timeout={round(waits.lock * 1000)} "
        f"-c statement_timeout={round(waits.statement * 1000)} "
        "-c jit=off"
    )
    return f"{ours} {given}".strip()


def make_engine(url: str, waits: Waits | None = None, **kwargs: object) -> Engine:
    """An engine whose statements wait at most `waits` (None: as long as the database lets
    them, for migrations)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        busy = waits.busy if waits else 30.0
        engine = create_engine(
            url, connect_args={"timeout": busy, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={round(busy * 1000)}")
            cur.close()

    else:
        kwargs.setdefault("pool_size", 40)
        kwargs.setdefault("max_overflow", 10)
        if waits is not None:
            kwargs["connect_args"] = {"options": _pg_options(url, waits)}
        engine = create_engine(url, **kwargs)
        if not kwargs.get("pool_pre_ping"):
            ping_idle_connections(engine)
    event.listen(engine, "handle_error", _raise_busy, retval=True)
    return engine


IDLE_BEFORE_PING = 1.0
"""Seconds a pooled connection may rest before it is pinged on checkout."""


def ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip that cost ~0.3 ms of
    CPU per request under load (bench/ack_latency.py). Here only a connection that rested
    longer than IDLE_BEFORE_PING is pinged, so a restart of the database during a quiet spell
    costs no request. A restart under load fails the statements in flight; SQLAlchemy then
    recycles every pooled connection, and the next requests reconnect."""

    @event.listens_for(engine, "checkin")
    def _rested_since(_dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_rested(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < IDLE_BEFORE_PING:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out another.
            raise DisconnectionError() from exc


class Database:
    """Owns the engine and hands out sessions with one transaction each."""

    def __init__(self, url: str, waits: Waits = BACKGROUND_WAITS, **engine_kwargs: object) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, waits, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = threading.RLock() if self.engine.dialect.name == "sqlite" else None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any exception."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A plain connection in autocommit, for one statement on the request path: a read-only
        look-up, or a write that is atomic on its own. No ORM, and one round trip instead of
        BEGIN, the statement, and COMMIT or ROLLBACK."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around a short write on the request path. SQLite has one write lock for the whole
        database, and a writer that finds it taken polls for it in SQLite's busy handler,
        sleeping up to 100 ms between tries however soon it is freed: concurrent writers of
        one process made tails of hundreds of ms (docs/performance.md, eighth session). They
        queue on a lock of the process instead, woken as soon as it is free (reentrant: a
        write inside another is no deadlock). PostgreSQL locks rows: nothing to do there."""
        if self._writer is None:
            yield
            return
        with self._writer:
            yield

    def ping(self) -> bool:
        from sqlalchemy import text

        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
