"""A kept version's SHA-1 may be null: an original uploaded straight to an object store
has none until processing reads it, and may be kept as a version before that.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("asset_versions") as batch:
        batch.alter_column("sha1", existing_type=sa.String(40), nullable=True)


def downgrade() -> None:
    # Fails while a version still has no SHA-1 (run processing first): nothing is lost.
    with op.batch_alter_table("asset_versions") as batch:
        batch.alter_column("sha1", existing_type=sa.String(40), nullable=False)
