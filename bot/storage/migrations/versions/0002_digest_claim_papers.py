"""digest claims remember the papers of a post in flight; index on claim status

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("digest_claims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("papers", sa.Text(), nullable=True))
        batch_op.create_index("ix_digest_claims_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("digest_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_digest_claims_status")
        batch_op.drop_column("papers")
