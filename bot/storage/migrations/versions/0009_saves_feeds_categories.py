"""saved papers, private feed tokens, and the papers' arXiv categories

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 09:00:00

Papers stored before this revision get empty categories (server default ""): the next API
answer or harvested record that names them fills them in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("primary_category", sa.String(40), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("categories", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "saved_papers",
        sa.Column(
            "workspace_id",
            sa.Integer(),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column(
            "paper_id",
            sa.String(40),
            sa.ForeignKey("papers.arxiv_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_saved_papers_person", "saved_papers", ["workspace_id", "user_id", "saved_at"]
    )
    op.create_table(
        "feed_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "channel_id",
            sa.Integer(),
            sa.ForeignKey("channels.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_feed_tokens_channel_id", "feed_tokens", ["channel_id"])


def downgrade() -> None:
    op.drop_index("ix_feed_tokens_channel_id", table_name="feed_tokens")
    op.drop_table("feed_tokens")
    op.drop_index("ix_saved_papers_person", table_name="saved_papers")
    op.drop_table("saved_papers")
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.drop_column("categories")
        batch_op.drop_column("primary_category")
