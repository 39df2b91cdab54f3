"""Search: indexes for filtering and sorting, the SQLite full-text index kept by
triggers, and the snapshots behind relevance-ordered cursors.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _view(row: str, key: str) -> str:
    """SQL for the metadata view's value of ``key`` in ``row`` (new/old): the users'
    layer over what processing extracted; a user's null hides the extracted value."""
    path = f"'$.\"{key}\"'"
    return (
        f"(CASE WHEN json_type({row}.properties, {path}) IS NULL "
        f"THEN json_extract({row}.extracted, {path}) "
        f"ELSE json_extract({row}.properties, {path}) END)"
    )


SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE search_fts USING fts5("
    "name, title, description, subject, body, tokenize = 'unicode61 remove_diacritics 2')",
    # A new asset gets the next document number; setting it indexes the asset (below).
    "CREATE TRIGGER nodes_search_insert AFTER INSERT ON nodes WHEN new.kind = 'asset' "
    "BEGIN UPDATE nodes SET doc_id = (SELECT coalesce(max(doc_id), 0) + 1 FROM nodes) "
    "WHERE id = new.id; END",
    "CREATE TRIGGER nodes_search_update "
    "AFTER UPDATE OF name, properties, extracted, extracted_text, doc_id ON nodes "
    "WHEN new.doc_id IS NOT NULL BEGIN "
    "DELETE FROM search_fts WHERE rowid = old.doc_id; "
    "INSERT INTO search_fts(rowid, name, title, description, subject, body) VALUES ("
    f"new.doc_id, new.name, {_view('new', 'dc:title')}, {_view('new', 'dc:description')}, "
    f"{_view('new', 'dc:subject')}, new.extracted_text); END",
    "CREATE TRIGGER nodes_search_delete AFTER DELETE ON nodes WHEN old.doc_id IS NOT NULL "
    "BEGIN DELETE FROM search_fts WHERE rowid = old.doc_id; END",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("doc_id", sa.Integer, nullable=True))
    op.create_index("ix_nodes_doc_id", "nodes", ["doc_id"], unique=True)
    for column in ("mime_type", "size", "created_at", "modified_at", "name"):
        op.create_index(f"ix_nodes_{column}", "nodes", [column])
    op.create_table(
        "search_snapshots",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("node_ids", sa.JSON, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_search_snapshots"),
    )
    op.create_index("ix_search_snapshots_expires_at", "search_snapshots", ["expires_at"])
    if sqlite:
        for statement in SQLITE_SEARCH:
            op.execute(statement)
        # Index the assets that exist: numbering them fires the update trigger.
        op.execute("UPDATE nodes SET doc_id = rowid WHERE kind = 'asset'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("nodes_search_insert", "nodes_search_update", "nodes_search_delete"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE search_fts")
    op.drop_table("search_snapshots")
    for column in ("mime_type", "size", "created_at", "modified_at", "name"):
        op.drop_index(f"ix_nodes_{column}", "nodes")
    op.drop_index("ix_nodes_doc_id", "nodes")
    # Not in batch mode: a batch rebuild of nodes on SQLite drops the old table, and with
    # foreign keys on that deletes every asset through the cascades. SQLite (3.35+) drops
    # an unindexed column in place.
    op.drop_column("nodes", "doc_id")
