"""Content Fragments: their models (by /conf path) and each fragment's data.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fragment_models",
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_fragment_models"),
    )
    op.create_table(
        "fragment_data",
        sa.Column("node_id", sa.String(36), nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_fragment_data"),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name="fk_fragment_data_node_id_nodes", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_fragment_data_model", "fragment_data", ["model"])


def downgrade() -> None:
    op.drop_table("fragment_data")
    op.drop_table("fragment_models")
