"""Engines, sessions and migrations: SQLite (WAL, busy timeout, foreign keys) or PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
_WRITE = "papers_write"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite connections get WAL, a busy timeout and foreign keys."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, **kwargs)
    in_memory = url in ("sqlite://", "sqlite:///:memory:")
    if in_memory:
        kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
    _configure_sqlite(engine, wal=not in_memory)
    return engine


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take BEGIN out of pysqlite's hands so that writers can say BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the write lock up front: a read-then-write
        # transaction would otherwise fail at once with "database is locked".
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reads; nothing it does is committed."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def writer(engine: Engine) -> Engine:
    """The engine for write transactions: on SQLite they begin IMMEDIATE (see `_on_begin`)."""
    return engine.execution_options(**{_WRITE: True}) if is_sqlite(engine) else engine


@contextmanager
def write_session(engine: Engine, *, durable: bool = True) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error.

    `durable=False` is for data that can be fetched again (a keyword refresh): on PostgreSQL the
    commit then does not wait for its WAL flush, so a crash can lose the last moments of a
    refresh but never leaves the database inconsistent.
    """
    with Session(writer(engine), expire_on_commit=False) as session, session.begin():
        if not durable and engine.dialect.name == "postgresql":
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        yield session


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` (the schema of every table comes from them)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def ensure_schema(engine: Engine) -> None:
    """Upgrade an empty or older database; cheap when it is already current."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        logger.info("upgrading database schema from %s to %s", current or "empty", head)
        upgrade(engine)


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


def backup(engine: Engine, target: Path) -> None:
    """A consistent copy of a SQLite database (VACUUM INTO; a plain copy of a WAL file can lose data)."""
    if not is_sqlite(engine):
        from bot.commands.grammar import BadInput

        raise BadInput(
            'Backups of PostgreSQL are pg_dump\'s job: pg_dump "$DATABASE_URL" > backup.sql'
        )
    if target.exists():
        from bot.commands.grammar import BadInput

        raise BadInput(f"{target} exists already; choose a new file name.")
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("VACUUM INTO ?", (str(target),))  # type: ignore[union-attr]
    finally:
        raw.close()
