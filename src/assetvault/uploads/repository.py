"""SQL of the uploads domain: which uploads have completed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select

from assetvault.adapters.database.connection import Connection
from assetvault.adapters.database.tables import completed_uploads


async def is_completed(conn: Connection, upload_id: str) -> bool:
    q = select(completed_uploads.c.upload_id).where(completed_uploads.c.upload_id == upload_id)
    return (await conn.execute(q)).first() is not None


async def mark_completed(conn: Connection, upload_id: str, node_id: str, when: datetime) -> None:
    """Raises IntegrityError when another complete of this upload got there first."""
    await conn.execute(
        insert(completed_uploads).values(upload_id=upload_id, node_id=node_id, completed_at=when)
    )


async def forget_completed_before(conn: Connection, when: datetime) -> int:
    result = await conn.execute(
        delete(completed_uploads).where(completed_uploads.c.completed_at < when)
    )
    return int(result.rowcount or 0)
