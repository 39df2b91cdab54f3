"""Completed uploads, so a replayed upload token is recognised.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "completed_uploads",
        sa.Column("upload_id", sa.String(32), nullable=False),
        sa.Column("node_id", sa.String(36), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("upload_id", name="pk_completed_uploads"),
    )
    op.create_index("ix_completed_uploads_completed_at", "completed_uploads", ["completed_at"])


def downgrade() -> None:
    op.drop_table("completed_uploads")
