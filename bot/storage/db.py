"""Engines, sessions and migrations: SQLite (WAL, busy timeout, foreign keys) or PostgreSQL."""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
_WRITE = "papers_write"
_REVISION = re.compile(r"^(down_)?revision(?::[^=]*)? = ['\"]([^'\"]+)['\"]", re.M)


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


# Alembic (and Mako, which it brings) is imported only to change a schema: a command on a
# current database checks the revision with one query and never pays for it.


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` (the schema of every table comes from them)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


@cache
def head_revision() -> str | None:
    """The newest migration's id, read from the migration files (None if they do not tell
    one head; then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for down, revision in _REVISION.findall(path.read_text(encoding="utf-8")):
            (parents if down else revisions).add(revision)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision, None for a database without our tables."""
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:  # no such table: an empty database
            return None


def ensure_schema(engine: Engine) -> None:
    """Upgrade an empty or older database; one query when it is already current."""
    current = current_revision(engine)
    if current is None or current != head_revision():
        logger.info("upgrading database schema from %s", current or "empty")
        upgrade(engine)


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


class DamagedDatabase(Exception):
    """SQLite's integrity check found the database damaged."""


class BackupRefused(Exception):
    """`backup` will not do this (PostgreSQL, or a target that exists); says what to do instead."""


def backup(engine: Engine, target: Path) -> None:
    """A consistent copy of a SQLite database (VACUUM INTO; a plain copy of a WAL file can lose
    data). The copy appears under `target` only once it is complete: a failure leaves nothing."""
    if not is_sqlite(engine):
        libpq = engine.url.set(drivername="postgresql", password=None)
        raise BackupRefused(
            "Backups of PostgreSQL are pg_dump's job (it reads the password from PGPASSWORD or "
            f"~/.pgpass): pg_dump '{libpq.render_as_string()}' > backup.sql"
        )
    source = engine.url.database or ""
    if not Path(source).is_file():
        raise BackupRefused(f"There is no database at {source or 'this URL'} to back up.")
    if target.exists():
        raise BackupRefused(f"{target} exists already; choose a new file name.")
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(target))
    partial = target.with_name(f".{target.name}.partial")
    raw = engine.raw_connection()
    try:
        sqlite = raw.driver_connection
        found = "\n".join(row[0] for row in sqlite.execute("PRAGMA quick_check"))  # type: ignore[union-attr]
        if found != "ok":
            problems = [line for line in found.splitlines() if not line.startswith("***")]
            raise DamagedDatabase("; ".join(problems[:2]) + ("; …" if len(problems) > 2 else ""))
        partial.unlink(missing_ok=True)  # what an interrupted backup left
        sqlite.execute("VACUUM INTO ?", (str(partial),))  # type: ignore[union-attr]
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
        raw.close()
