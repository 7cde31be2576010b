"""SQL helpers every store module uses: UTC times back from SQLite, the dialect's INSERT,
and `IN` lists that stay one prepared statement on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, Table, any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def insert_for(session: Session, model: Any) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which knows ON CONFLICT."""
    table: Table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def one_of(session: Session, column: Any, values: Sequence[str]) -> Any:
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, whose SQL text does not change
    with the number of values, so the driver can keep it prepared (a refresh runs it 10,000 times)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("one_of", value=list(values), type_=ARRAY(String)))
    return column.in_(values)
