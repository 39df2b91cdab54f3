"""The schema, as SQLAlchemy Core tables. Written for SQLite and PostgreSQL alike:
portable types only, every change through an Alembic migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

# SQLite aliases the rowid only for INTEGER PRIMARY KEY; PostgreSQL wants 64 bits.
Sequence64 = BigInteger().with_variant(Integer, "sqlite")

# What only the SQLite schema has, made by migrations in SQL, which autogenerate must not
# read as objects to drop: the full-text index (search_fts, its shadow tables and
# search_fts_state, which says whether its triggers keep it: migration 0017), and
# the generated dc:title column of nodes with its sort indexes. And what only the
# PostgreSQL schema has (migration 0010): the search_tsv column and its GIN index, and
# the GIN indexes of the metadata.
FULL_TEXT_TABLES = "search_fts"
SQLITE_ONLY = {
    ("column", "title"),
    ("index", "ix_nodes_title_asc"),
    ("index", "ix_nodes_title_desc"),
}
POSTGRES_ONLY = {
    ("column", "search_tsv"),
    ("index", "ix_nodes_search_tsv"),
    ("index", "ix_nodes_properties_jsonb"),
    ("index", "ix_nodes_extracted_jsonb"),
}


def is_declared(name: str | None, type_: str) -> bool:
    """Whether autogenerate compares this object (Alembic's include_name hook)."""
    if type_ == "table" and (name or "").startswith(FULL_TEXT_TABLES):
        return False
    return (type_, name) not in SQLITE_ONLY | POSTGRES_ONLY


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Folders and assets: one tree under /content/dam. The id is the UUID of the node's URN
# (urn:aaid:aem:<id>) and never changes; the path does on a move.
nodes = Table(
    "nodes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("parent_id", String(36), ForeignKey("nodes.id", ondelete="CASCADE"), nullable=True),
    Column("name", String(255), nullable=False),
    Column("path", Text, nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # "folder" | "asset"
    Column("revision", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("modified_at", DateTime(timezone=True), nullable=False),
    Column("modified_by", String(255), nullable=False),
    # Folder properties (jcr:title, ...) or the asset's writable metadata.
    Column("properties", JSON, nullable=False),
    # The asset's current original; null for folders.
    Column("blob_key", String(80), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("sha1", String(40), nullable=True),
    Column("mime_type", String(255), nullable=True),
    Column("asset_state", String(16), nullable=True),  # processing | processed | failed
    # What processing read from the original (EXIF, IPTC, XMP, dimensions); the view of
    # assetMetadata is this overlaid by ``properties`` (what users wrote).
    Column("extracted", JSON, nullable=True),
    Column("extracted_text", Text, nullable=True),  # e.g. a PDF's text, for search
    Column("processing_error", Text, nullable=True),
    # The asset's row number in the full-text index (SQLite's search_fts, kept by
    # triggers); stable, unlike SQLite's own rowid, which VACUUM may renumber.
    Column("doc_id", Integer, nullable=True),
    # assetMetadata dam:assetStatus as the metadata API shows it, computed by the database
    # (migration 0006 holds each backend's expression), so facets read an index.
    Column(
        "asset_status",
        String(255),
        Computed("dam:assetStatus of the users' layer over the extracted one"),
        nullable=True,
    ),
    # Publish state (AEM_PUBLISH): whether the asset is published now, and when it last was.
    Column("published", Boolean, nullable=False, server_default=false()),
    Column("published_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("parent_id", "name"),
    Index(None, "blob_key"),
    Index("ix_nodes_doc_id", "doc_id", unique=True),
    Index("ix_nodes_search_facets", "kind", "mime_type", "size", "asset_status", "doc_id"),
    # What searches filter and sort on.
    Index(None, "mime_type"),
    Index(None, "size"),
    Index(None, "created_at"),
    Index(None, "modified_at"),
    Index(None, "name"),
)

# Earlier originals of an asset, kept when a new binary arrives with createVersion.
asset_versions = Table(
    "asset_versions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("node_id", String(36), ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("label", Text, nullable=True),
    Column("comment", Text, nullable=True),
    Column("blob_key", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    # Null for an original kept before processing had read it (a direct upload to S3).
    Column("sha1", String(40), nullable=True),
    Column("mime_type", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("node_id", "number"),
    Index(None, "blob_key"),
)

# API tokens; only a SHA-256 of the secret is stored.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("scope", String(16), nullable=False),  # read | write | admin
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


# Share links (shares/): read-only links to an asset or a folder. Only a SHA-256 of the
# link's secret is stored; the link follows its node (by id) through moves and renames.
share_links = Table(
    "share_links",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("node_id", String(36), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index(None, "created_by"),
)

# Renditions of an asset: made by processing ("generated") or put by a client ("uploaded").
renditions = Table(
    "renditions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("node_id", String(36), ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("origin", String(16), nullable=False),  # generated | uploaded
    Column("blob_key", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mime_type", String(255), nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("node_id", "name"),
    Index(None, "blob_key"),
)

# The durable job queue of the embedded default. A job is inserted in the transaction of
# the change that causes it, claimed with a lease, retried with backoff, and always ends
# "succeeded" or "failed".
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # queued | running | succeeded | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False, server_default="3"),
    Column("run_after", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("worker", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ix_jobs_claim", "state", "run_after"),
)

# Relations between assets (Author API): "sources", "derived", "others". An "others"
# relation is stored once per direction, so it reads the same from both ends.
relations = Table(
    "relations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("asset_id", String(36), ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("relation_type", String(32), nullable=False),
    Column("related_id", String(36), ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("asset_id", "relation_type", "related_id"),
    Index(None, "related_id"),
)

# Comments on assets (classic Assets HTTP API).
comments = Table(
    "comments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("node_id", String(36), ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("message", Text, nullable=False),
    Column("annotation_data", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Index(None, "node_id"),
)


# Relevance-ordered search results, frozen when their first page is read, so later pages
# follow the same order however the index changes meanwhile (a cursor names a snapshot).
search_snapshots = Table(
    "search_snapshots",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("node_ids", JSON, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index(None, "expires_at"),
)


# The transactional outbox: one row per domain event, appended in the transaction of
# the change that caused it, so a rolled-back change leaves none and a committed one
# never misses its own. ``seq`` is the commit order (SQLite serialises writers; on
# PostgreSQL the write path takes a transaction lock before appending), which is how
# consumers (the search indexer, the event dispatcher) read it and remember where
# they are. AUTOINCREMENT on SQLite: a number is never handed out twice, even after
# pruning.
outbox = Table(
    "outbox",
    metadata,
    Column("seq", Sequence64, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),  # the event's own id
    Column("type", String(64), nullable=False),  # e.g. asset.created
    Column("node_id", String(36), nullable=True),  # no foreign key: deletes keep events
    Column("path", Text, nullable=True),
    Column("user", String(255), nullable=True),  # who acted; null for the system
    Column("data", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "node_id", "seq"),
    sqlite_autoincrement=True,
)


# How far the outbox has been pruned: every row with ``seq`` up to this one is gone (the
# sweep removes a prefix of rows every consumer has read, once older than the
# retention). A consumer whose position is below it has missed rows and must not go on
# as if it had not (the search indexer rebuilds; the dispatcher says so). One row.
outbox_floor = Table(
    "outbox_floor",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
)


# Uploads whose complete committed, kept as long as their upload token could be replayed:
# a second complete with the same token is refused as such (in any server process), and
# two racing completes of one upload cannot both create an asset.
completed_uploads = Table(
    "completed_uploads",
    metadata,
    Column("upload_id", String(32), primary_key=True),
    Column("node_id", String(36), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=False),
    Index(None, "completed_at"),
)


# Event registrations (webhook, webhook_batch or journal), as Adobe I/O Events keeps them:
# the client id they deliver to, the AEM event types they want, the webhook's verification
# (webhook_status) and health (state: active | unstable | disabled, the 24-hour rule).
# journal_start: the journal position before the registration existed (its journal
# starts after it).
event_registrations = Table(
    "event_registrations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("client_id", String(255), nullable=False),
    Column("delivery_type", String(16), nullable=False),
    Column("webhook_url", Text, nullable=True),
    Column("event_types", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("webhook_status", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("unstable_since", DateTime(timezone=True), nullable=True),
    Column("validation_token", String(64), nullable=True),
    Column("validation_expires_at", DateTime(timezone=True), nullable=True),
    Column("journal_start", Sequence64, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Every AEM event made from the outbox, once, in outbox order: the journal all
# registrations read (each its own types, after its journal_start), kept for the
# retention period. ``event`` is the CloudEvent without the per-registration fields.
event_journal = Table(
    "event_journal",
    metadata,
    Column("seq", Sequence64, primary_key=True, autoincrement=True),
    Column("outbox_seq", Sequence64, nullable=False, unique=True),
    Column("id", String(36), nullable=False),
    Column("type", String(64), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("event", JSON, nullable=False),
    Index(None, "time"),
    sqlite_autoincrement=True,
)

# One row per (webhook registration, event): pending until delivered, failed (a final
# status), or expired (retries ran out of their window).
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("id", Sequence64, primary_key=True, autoincrement=True),
    Column(
        "registration_id",
        String(36),
        ForeignKey("event_registrations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("journal_seq", Sequence64, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("registration_id", "journal_seq"),
    Index(None, "state", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# Each request sent to a webhook (one event or a batch): what the registration shows as
# its attempts, and what the 24-hour health rule counts.
event_attempts = Table(
    "event_attempts",
    metadata,
    Column("id", Sequence64, primary_key=True, autoincrement=True),
    Column(
        "registration_id",
        String(36),
        ForeignKey("event_registrations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("delivery_id", String(36), nullable=False),
    Column("events", JSON, nullable=False),  # the event ids sent
    Column("retry_count", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index(None, "registration_id", "at"),
    sqlite_autoincrement=True,
)

# The dispatcher's own state: its outbox position, the journal's retention floor, and
# the lease that keeps one dispatcher running at a time.
event_state = Table(
    "event_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Secrets every machine of an installation on a shared database must agree on (the
# upload-token secret, the event signing keys; adapters/database/secrets.py), each made
# once by whichever process needs it first (insert-if-absent, then read back).
shared_secrets = Table(
    "shared_secrets",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Import jobs (URL imports and imports from a source) of both import interfaces, and the
# state of each of their files, recorded durably so a job resumes after a crash without
# importing a file twice (imports/service.py).
import_jobs = Table(
    "import_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("operation", String(64), nullable=False),  # aem.assets.import.fromurl | fromsource
    Column("user", String(255), nullable=False),
    Column("folder_id", String(36), nullable=False),
    Column("folder_path", Text, nullable=False),
    Column("config", JSON, nullable=False),  # assetMetadata, folder, items, sourceName
    # QUEUED | IMPORTING | COMPLETED | COMPLETED_WITH_ERRORS | FAILED
    Column("step", String(32), nullable=False),
    Column("total", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("error", Text, nullable=True),  # why the whole job failed, when it did
    Index(None, "created_at"),
)

import_files = Table(
    "import_files",
    metadata,
    Column("job_id", String(36), ForeignKey("import_jobs.id", ondelete="CASCADE")),
    Column("idx", Integer, nullable=False),  # position in the request
    Column("file_name", Text, nullable=False),
    Column("url", Text, nullable=True),  # a URL import's source
    Column("item_id", Text, nullable=True),  # a source import's item
    Column("rel_path", Text, nullable=True),  # folder below the target, for source folders
    Column("mime_type", String(255), nullable=True),  # as the request gave it
    Column("file_size", BigInteger, nullable=True),  # as the request gave it
    Column("metadata", JSON, nullable=False),  # the file's own assetMetadata
    Column("state", String(16), nullable=False),  # pending | imported | failed
    Column("asset_id", String(36), nullable=True),
    Column("asset_path", Text, nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("error", JSON, nullable=True),  # a problem document
    Column("warnings", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("job_id", "idx"),
)

# Import sources (Dropbox, OneDrive) of the Import API; the OAuth tokens are encrypted.
import_sources = Table(
    "import_sources",
    metadata,
    Column("user", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("label", Text, nullable=False),  # the title (a "title" column is SQLite-only)
    Column("type", String(16), nullable=False),  # dropbox | onedrive
    Column("oauth_state", String(64), nullable=True),  # the pending authorisation's state
    Column("code_verifier", Text, nullable=True),  # encrypted PKCE verifier
    Column("access_token", Text, nullable=True),  # encrypted
    Column("refresh_token", Text, nullable=True),  # encrypted
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("user", "name"),
    UniqueConstraint("oauth_state"),
)

# Where the embedded search index stands: the outbox position its last commit applied
# and the directory (under the data directory) that holds it. Tantivy keeps no payload
# with a commit, so the search indexer writes this row after each one; a replay from
# here is harmless (it indexes the current state of each changed asset). A rebuild
# writes a new directory and swaps it in by changing this row.
search_index_state = Table(
    "search_index_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("directory", Text, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


# Content Fragment models, each under its /conf/<config>/settings/dam/cfm/models/<name>
# path: the definition is the model file as loaded (fragments/models.py), checked.
fragment_models = Table(
    "fragment_models",
    metadata,
    Column("path", Text, primary_key=True),
    Column("definition", JSON, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    Column("loaded_by", String(255), nullable=False),
)

# A Content Fragment's structured content (the asset itself is a node without an
# original): its model's path and its elements' values, master and variations. Written
# by the write path only, as the node is; goes with the node.
fragment_data = Table(
    "fragment_data",
    metadata,
    Column("node_id", String(36), ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("model", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Index(None, "model"),
)
