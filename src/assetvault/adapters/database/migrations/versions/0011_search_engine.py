"""The search engine: where the embedded (Tantivy) index stands in the outbox, and the
PostgreSQL backend's own full-text index (a tsvector column kept by a trigger, with a
GIN index; accents folded with ``unaccent``) and jsonb indexes for metadata filters.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The metadata view's text of a key in NEW: the users' layer over the extracted one.
_VIEW = (
    "coalesce(CASE WHEN json_typeof(NEW.properties -> '{key}') IS NULL "
    "THEN NEW.extracted -> '{key}' ELSE NEW.properties -> '{key}' END #>> '{{}}', '')"
)


def _tsv(text: str, weight: str) -> str:
    # Words are runs of letters and digits, accents and case folded: as the query side
    # splits them (search/query.py words), and as the embedded index does.
    return (
        f"setweight(to_tsvector('simple', regexp_replace(lower(assetvault_fold({text})), "
        f"'[^[:alnum:]]+', ' ', 'g')), '{weight}')"
    )


POSTGRES_UP = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    # unaccent() is STABLE (its dictionary could change); wrapped with the dictionary
    # named so it can serve a trigger and an expression index.
    "CREATE OR REPLACE FUNCTION assetvault_fold(t text) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS "
    "$$ SELECT public.unaccent('public.unaccent'::regdictionary, t) $$",
    "ALTER TABLE nodes ADD COLUMN search_tsv tsvector",
    # Weights: A title, B name and subject, C description, D the document's own text.
    "CREATE OR REPLACE FUNCTION assetvault_search_tsv() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN IF NEW.kind = 'asset' THEN NEW.search_tsv := "
    + " || ".join(
        [
            _tsv(_VIEW.format(key="dc:title"), "A"),
            _tsv("coalesce(NEW.name, '')", "B"),
            _tsv(_VIEW.format(key="dc:subject"), "B"),
            _tsv(_VIEW.format(key="dc:description"), "C"),
            _tsv("coalesce(NEW.extracted_text, '')", "D"),
        ]
    )
    + "; ELSE NEW.search_tsv := NULL; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER nodes_search_tsv BEFORE INSERT OR UPDATE OF name, kind, properties, "
    "extracted, extracted_text ON nodes FOR EACH ROW EXECUTE FUNCTION assetvault_search_tsv()",
    # Fill it for the assets already there (the trigger computes it).
    "UPDATE nodes SET name = name WHERE kind = 'asset'",
    "CREATE INDEX ix_nodes_search_tsv ON nodes USING gin (search_tsv)",
    # Metadata filters: containment on either layer of the view narrows by index first.
    "CREATE INDEX ix_nodes_properties_jsonb ON nodes USING gin "
    "(CAST(properties AS jsonb) jsonb_path_ops)",
    "CREATE INDEX ix_nodes_extracted_jsonb ON nodes USING gin "
    "(CAST(extracted AS jsonb) jsonb_path_ops)",
]

POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_nodes_extracted_jsonb",
    "DROP INDEX IF EXISTS ix_nodes_properties_jsonb",
    "DROP INDEX IF EXISTS ix_nodes_search_tsv",
    "DROP TRIGGER IF EXISTS nodes_search_tsv ON nodes",
    "DROP FUNCTION IF EXISTS assetvault_search_tsv()",
    "ALTER TABLE nodes DROP COLUMN IF EXISTS search_tsv",
    "DROP FUNCTION IF EXISTS assetvault_fold(text)",
]


def upgrade() -> None:
    op.create_table(
        "search_index_state",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("directory", sa.Text, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_search_index_state"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(statement)
    op.drop_table("search_index_state")
