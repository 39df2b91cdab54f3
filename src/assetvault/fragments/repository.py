"""Reads of Content Fragments and their models, and the one write of models (a model is
configuration under /conf, not part of the content tree; fragments themselves are written
by the write path, tree/writes.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert

from assetvault.adapters.database.connection import Connection
from assetvault.adapters.database.reader import Reader
from assetvault.adapters.database.tables import fragment_models
from assetvault.fragments.models import Fragment, FragmentData, FragmentModel
from assetvault.tree.repository import document


async def model_at(r: Reader, path: str) -> FragmentModel | None:
    row = await r.fetch_one("SELECT path, definition FROM fragment_models WHERE path = ?", (path,))
    return FragmentModel.from_definition(row[0], document(row[1])) if row else None


async def models(r: Reader) -> list[FragmentModel]:
    rows = await r.fetch_all("SELECT path, definition FROM fragment_models ORDER BY path")
    return [FragmentModel.from_definition(row[0], document(row[1])) for row in rows]


async def fragment_of(r: Reader, node_id: str) -> Fragment | None:
    row = await r.fetch_one(
        "SELECT node_id, model, data FROM fragment_data WHERE node_id = ?", (node_id,)
    )
    if row is None:
        return None
    return Fragment(row[0], row[1], FragmentData.from_json(dict(document(row[2]) or {})))


async def put_model(conn: Connection, model: FragmentModel, *, user: str, now: datetime) -> None:
    """Store (or replace) the model at its path, in the caller's transaction."""
    values: dict[str, Any] = {
        "path": model.path,
        "definition": model.definition(),
        "loaded_at": now,
        "loaded_by": user,
    }
    await conn.execute(delete(fragment_models).where(fragment_models.c.path == model.path))
    await conn.execute(insert(fragment_models).values(**values))
