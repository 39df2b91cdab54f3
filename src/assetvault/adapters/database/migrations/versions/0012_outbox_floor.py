"""How far the outbox has been pruned: one row, the highest ``seq`` removed (0: none).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    floor = op.create_table(
        "outbox_floor",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_floor"),
    )
    # Nothing pruned yet: the outbox is whole.
    op.bulk_insert(floor, [{"id": 1, "seq": 0}])


def downgrade() -> None:
    op.drop_table("outbox_floor")
