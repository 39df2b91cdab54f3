"""Content tree, asset versions and API tokens; the /content/dam root folder.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    nodes = op.create_table(
        "nodes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("parent_id", sa.String(36), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_by", sa.String(255), nullable=False),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.Column("blob_key", sa.String(80), nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("sha1", sa.String(40), nullable=True),
        sa.Column("mime_type", sa.String(255), nullable=True),
        sa.Column("asset_state", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_nodes"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["nodes.id"], name="fk_nodes_parent_id_nodes", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("path", name="uq_nodes_path"),
        sa.UniqueConstraint("parent_id", "name", name="uq_nodes_parent_id_name"),
    )
    op.create_index("ix_nodes_blob_key", "nodes", ["blob_key"])
    op.create_table(
        "asset_versions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("node_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("blob_key", sa.String(80), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_asset_versions"),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name="fk_asset_versions_node_id_nodes", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("node_id", "number", name="uq_asset_versions_node_id_number"),
    )
    op.create_index("ix_asset_versions_blob_key", "asset_versions", ["blob_key"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        nodes,
        [
            {
                "id": str(uuid.uuid4()),
                "parent_id": None,
                "name": "dam",
                "path": "/content/dam",
                "kind": "folder",
                "revision": 1,
                "created_at": now,
                "created_by": "system",
                "modified_at": now,
                "modified_by": "system",
                "properties": {"jcr:title": "Assets"},
            }
        ],
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_table("asset_versions")
    op.drop_table("nodes")
