"""The asset status (assetMetadata dam:assetStatus) as a generated column, with a
covering index for the facet counts of searches filtered by format and size; and on
SQLite the title (dc:title) as one too, indexed in both directions for sorting.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The metadata view's dam:assetStatus: the users' layer over the extracted one.
SQLITE_STATUS = (
    "CASE WHEN json_type(properties, '$.\"dam:assetStatus\"') IS NULL "
    "THEN json_extract(extracted, '$.\"dam:assetStatus\"') "
    "ELSE json_extract(properties, '$.\"dam:assetStatus\"') END"
)
POSTGRES_STATUS = (
    "CASE WHEN json_typeof(properties -> 'dam:assetStatus') IS NULL "
    "THEN extracted ->> 'dam:assetStatus' ELSE properties ->> 'dam:assetStatus' END"
)
FACET_COLUMNS = "kind, mime_type, size, asset_status, doc_id"
SQLITE_TITLE = SQLITE_STATUS.replace("dam:assetStatus", "dc:title")
# Missing titles sort last in both directions: the first key says whether one is there.
TITLE_MISSING = "(CASE WHEN title IS NULL THEN 1 ELSE 0 END)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # VIRTUAL (SQLite adds no STORED column to a table): the index stores the value.
        op.execute(
            f"ALTER TABLE nodes ADD COLUMN asset_status VARCHAR(255) "
            f"GENERATED ALWAYS AS ({SQLITE_STATUS}) VIRTUAL"
        )
        op.execute(
            f"ALTER TABLE nodes ADD COLUMN title TEXT GENERATED ALWAYS AS ({SQLITE_TITLE}) VIRTUAL"
        )
        op.execute(f"CREATE INDEX ix_nodes_title_asc ON nodes ({TITLE_MISSING}, title)")
        op.execute(f"CREATE INDEX ix_nodes_title_desc ON nodes ({TITLE_MISSING}, title DESC)")
    else:
        op.execute(
            f"ALTER TABLE nodes ADD COLUMN asset_status VARCHAR(255) "
            f"GENERATED ALWAYS AS ({POSTGRES_STATUS}) STORED"
        )
    op.execute(f"CREATE INDEX ix_nodes_search_facets ON nodes ({FACET_COLUMNS})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_nodes_title_asc", "nodes")
        op.drop_index("ix_nodes_title_desc", "nodes")
        op.drop_column("nodes", "title")
    op.drop_index("ix_nodes_search_facets", "nodes")
    op.drop_column("nodes", "asset_status")
