"""drop three indexes that repeat the first column of a unique constraint

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-01 09:00:00

channels (workspace_id, external_id), subscriptions (channel_id, keyword_id) and
digest_claims (channel_id, local_date) are unique, and the index behind each constraint
(SQLite's autoindex, PostgreSQL's btree) answers lookups by its first column as well, the
foreign keys' cascades among them. The single-column indexes on that first column only cost
writes and space. Dropping an index leaves every row as it is, on both databases.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

REDUNDANT = (
    ("ix_channels_workspace_id", "channels", "workspace_id"),
    ("ix_subscriptions_channel_id", "subscriptions", "channel_id"),
    ("ix_digest_claims_channel_id", "digest_claims", "channel_id"),
)


def upgrade() -> None:
    for name, table, _column in REDUNDANT:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, column in REDUNDANT:
        op.create_index(name, table, [column])
