"""Asset events: publish state of assets, event registrations, the journal, webhook
deliveries and their attempts, and the dispatcher's own state.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: SQLite keeps the table (its triggers and
    # generated columns) as it is.
    op.add_column(
        "nodes", sa.Column("published", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("nodes", sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "event_registrations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("delivery_type", sa.String(16), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("webhook_status", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("unstable_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("validation_token", sa.String(64), nullable=True),
        sa.Column("validation_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("journal_start", SEQ, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_registrations"),
    )
    op.create_table(
        "event_journal",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("outbox_seq", SEQ, nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_event_journal"),
        sa.UniqueConstraint("outbox_seq", name="uq_event_journal_outbox_seq"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_event_journal_time", "event_journal", ["time"])
    op.create_table(
        "event_deliveries",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("registration_id", sa.String(36), nullable=False),
        sa.Column("journal_seq", SEQ, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["event_registrations.id"],
            name="fk_event_deliveries_registration_id_event_registrations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_event_deliveries"),
        sa.UniqueConstraint(
            "registration_id", "journal_seq", name="uq_event_deliveries_registration_id_journal_seq"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_event_deliveries_state_next_attempt_at",
        "event_deliveries",
        ["state", "next_attempt_at"],
    )
    op.create_table(
        "event_attempts",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("registration_id", sa.String(36), nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["event_registrations.id"],
            name="fk_event_attempts_registration_id_event_registrations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_event_attempts"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_event_attempts_registration_id_at", "event_attempts", ["registration_id", "at"]
    )
    op.create_table(
        "event_state",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_event_state"),
    )


def downgrade() -> None:
    op.drop_table("event_state")
    op.drop_table("event_attempts")
    op.drop_table("event_deliveries")
    op.drop_table("event_journal")
    op.drop_table("event_registrations")
    # SQLite (3.35 and later) drops a column in place, as PostgreSQL does.
    op.drop_column("nodes", "published_at")
    op.drop_column("nodes", "published")
