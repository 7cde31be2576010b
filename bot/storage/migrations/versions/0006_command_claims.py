"""command claims: a command received is remembered for a while, so that it runs once

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 09:00:00

A new table only: an existing database with rows upgrades without touching them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "command_claims",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("command", sa.String(64), nullable=False, server_default=""),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_command_claims_expires_at", "command_claims", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_command_claims_expires_at", table_name="command_claims")
    op.drop_table("command_claims")
