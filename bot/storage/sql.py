"""SQL helpers every store module uses: UTC times back from SQLite, the dialect's INSERT,
and `IN` lists that stay one prepared statement on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

# The generic ARRAY: on PostgreSQL it becomes the dialect's, and SQLite never imports that.
from sqlalchemy import ARRAY, String, Table, any_, bindparam
from sqlmodel import Session

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def insert_for(session: Session, model: Any) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which knows ON CONFLICT. Each dialect is imported when used: a
    process on SQLite never loads PostgreSQL's (20-30 ms of start-up)."""
    table: Table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def one_of(session: Session, column: Any, values: Sequence[str]) -> Any:
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, whose SQL text does not change
    with the number of values, so the driver can keep it prepared (a refresh runs it 10,000 times)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("one_of", value=list(values), type_=ARRAY(String)))
    return column.in_(values)
