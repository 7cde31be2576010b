"""arXiv access: the deployment's pacer row, the daily harvest's state and its candidates

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-29 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "arxiv_pacer",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=True),
        sa.Column("held_until", sa.Float(), nullable=False),
        sa.Column("not_before", sa.Float(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("outage_round", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.Float(), nullable=True),
        sa.Column("last_failure", sa.String(300), nullable=True),
    )
    op.create_table(
        "harvest_state",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("from_day", sa.Date(), nullable=False),
        sa.Column("next_from", sa.Date(), nullable=True),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("confirms", sa.Integer(), nullable=False),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
    )
    op.create_table(
        "harvest_candidates",
        sa.Column(
            "keyword_id",
            sa.Integer(),
            sa.ForeignKey("keywords.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("paper_id", sa.String(40), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("harvest_candidates")
    op.drop_table("harvest_state")
    op.drop_table("arxiv_pacer")
