"""SQLite's full-text table (search_fts, migration 0005) is kept by its triggers only
while the database search backend searches it. The embedded default searches the Tantivy
index, yet every change of an asset's metadata, name or text re-tokenized the asset's
words into search_fts (its old row out, its new row in) inside the writer's transaction,
while every other writer waited for the lock.

A one-row table, search_fts_state, says whether the table is kept; the triggers that
follow changes and deletes fire only while it says so. Upgrading empties the table and
leaves it unkept; the database backend, at its first search, fills it from the tree and
keeps it from then on, in one transaction (adapters/search/sql.py). PostgreSQL is
untouched: its search_tsv is what its search reads.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

KEPT = "(SELECT kept FROM search_fts_state)"


def _view(row: str, key: str) -> str:
    """As in 0005: the metadata view's value of ``key`` in ``row`` (new/old)."""
    path = f"'$.\"{key}\"'"
    return (
        f"(CASE WHEN json_type({row}.properties, {path}) IS NULL "
        f"THEN json_extract({row}.extracted, {path}) "
        f"ELSE json_extract({row}.properties, {path}) END)"
    )


def _triggers(when: str) -> list[str]:
    """The update and delete triggers of 0005, firing only ``when`` also holds."""
    return [
        "CREATE TRIGGER nodes_search_update "
        "AFTER UPDATE OF name, properties, extracted, extracted_text, doc_id ON nodes "
        f"WHEN new.doc_id IS NOT NULL{when} BEGIN "
        "DELETE FROM search_fts WHERE rowid = old.doc_id; "
        "INSERT INTO search_fts(rowid, name, title, description, subject, body) VALUES ("
        f"new.doc_id, new.name, {_view('new', 'dc:title')}, {_view('new', 'dc:description')}, "
        f"{_view('new', 'dc:subject')}, new.extracted_text); END",
        f"CREATE TRIGGER nodes_search_delete AFTER DELETE ON nodes "
        f"WHEN old.doc_id IS NOT NULL{when} "
        "BEGIN DELETE FROM search_fts WHERE rowid = old.doc_id; END",
    ]


def _drop_triggers() -> None:
    op.execute("DROP TRIGGER nodes_search_update")
    op.execute("DROP TRIGGER nodes_search_delete")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE search_fts_state (kept BOOLEAN NOT NULL)")
    op.execute("INSERT INTO search_fts_state (kept) VALUES (0)")
    _drop_triggers()
    for statement in _triggers(f" AND {KEPT}"):
        op.execute(statement)
    op.execute("DELETE FROM search_fts")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_triggers()
    for statement in _triggers(""):
        op.execute(statement)
    # Kept always again: filled from the tree as it is.
    op.execute("DELETE FROM search_fts")
    op.execute(
        "INSERT INTO search_fts(rowid, name, title, description, subject, body) "
        f"SELECT doc_id, name, {_view('nodes', 'dc:title')}, "
        f"{_view('nodes', 'dc:description')}, {_view('nodes', 'dc:subject')}, extracted_text "
        "FROM nodes WHERE doc_id IS NOT NULL"
    )
    op.execute("DROP TABLE search_fts_state")
