"""Relations between assets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("asset_id", sa.String(36), nullable=False),
        sa.Column("relation_type", sa.String(32), nullable=False),
        sa.Column("related_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_relations"),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["nodes.id"], name="fk_relations_asset_id_nodes", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["related_id"], ["nodes.id"], name="fk_relations_related_id_nodes", ondelete="CASCADE"
        ),
        sa.UniqueConstraint(
            "asset_id",
            "relation_type",
            "related_id",
            name="uq_relations_asset_id_relation_type_related_id",
        ),
    )
    op.create_index("ix_relations_related_id", "relations", ["related_id"])


def downgrade() -> None:
    op.drop_table("relations")
