"""daily posts in parts: a row per platform message, claims with retries and hand-backs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 09:00:00

A claim's papers now live on its parts (delivered with the part that carried them), so the
claim's `papers` column goes. Claims in flight at the upgrade ("claimed", "sending") become
"open" and free to take: their papers were never recorded as delivered, so the day's post is
made again (a duplicate beats a loss).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("claim_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=True),
        sa.Column("papers", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["claim_id"], ["digest_claims.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("claim_id", "number"),
    )
    with op.batch_alter_table("digest_claims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column("papers")
    op.execute(
        "UPDATE digest_claims SET status = 'open', owner = '', lease_until = claimed_at "
        "WHERE status IN ('claimed', 'sending')"
    )


def downgrade() -> None:
    op.execute("UPDATE digest_claims SET status = 'claimed' WHERE status = 'open'")
    with op.batch_alter_table("digest_claims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("papers", sa.Text(), nullable=True))
        batch_op.drop_column("retry_at")
        batch_op.drop_column("attempts")
    op.drop_table("digest_parts")
