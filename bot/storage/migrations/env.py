"""Alembic environment: runs migrations on the engine the application hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import bot.storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
engine = config.attributes["engine"]


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Autogenerate compares only our SQLModel tables: the slack_* tables (migration 0003) have
    their layout from slack_sdk and are not in SQLModel.metadata."""
    return not (
        type_ == "table" and reflected and compare_to is None and (name or "").startswith("slack_")
    )


with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
