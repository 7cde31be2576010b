"""the shape of a channel's post: weekly day, threads, style, max papers

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:00:00

Four columns on channels, each with a server default, so that an existing channel keeps
exactly the post it had: daily (`digest_weekday` NULL; 0 = Monday ... 6 = Sunday), no
thread, the full style, at most 100 papers. Adding a column with a constant default keeps
every row on both databases (no table rewrite on PostgreSQL 11+; SQLite's ADD COLUMN).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch copy: on SQLite a copied `channels` table would be
    # dropped, and its cascades would delete every channel's subscriptions and claims.
    op.add_column("channels", sa.Column("digest_weekday", sa.Integer(), nullable=True))
    op.add_column(
        "channels",
        sa.Column("digest_threads", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "channels",
        sa.Column("digest_style", sa.String(length=8), nullable=False, server_default="full"),
    )
    op.add_column(
        "channels", sa.Column("digest_max", sa.Integer(), nullable=False, server_default="100")
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), for the same reason.
    for name in ("digest_max", "digest_style", "digest_threads", "digest_weekday"):
        op.drop_column("channels", name)
