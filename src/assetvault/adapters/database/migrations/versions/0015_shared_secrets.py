"""Shared secrets: the keys every machine of an installation must agree on (the upload
token secret, the event signing keys), kept in the database instead of one machine's
data directory; and the dispatcher's lease row made up front, so a dispatcher takes the
lease by locking a row that is always there.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shared_secrets",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_shared_secrets"),
    )
    op.execute(
        "INSERT INTO event_state (key, value) SELECT 'dispatcher_lease', '' "
        "WHERE NOT EXISTS (SELECT 1 FROM event_state WHERE key = 'dispatcher_lease')"
    )


def downgrade() -> None:
    op.drop_table("shared_secrets")
