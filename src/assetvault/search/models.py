"""What the search indexer hands to an index kept apart from the database: the current
state of one asset, as searches see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class IndexedAsset:
    id: str
    name: str
    path: str
    parent_id: str | None
    # Ids of every folder above the asset (the root included): repo:ancestors.
    ancestor_ids: tuple[str, ...]
    created_at: datetime
    modified_at: datetime
    created_by: str
    modified_by: str
    mime_type: str | None = None
    size: int | None = None
    asset_state: str | None = None
    sha1: str | None = None
    # The metadata view (extracted values overlaid by users' writes, nulls dropped).
    metadata: dict[str, Any] = field(default_factory=dict)
    text: str | None = None  # the document's own words (a PDF's text)
