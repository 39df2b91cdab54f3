"""What the tree service hands out: plain, immutable values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from assetvault.tree.paths import urn

NodeKind = Literal["folder", "asset"]
# A content fragment is an asset of this type without an original (fragments/).
FRAGMENT_TYPE = "application/vnd.adobe.contentfragment"


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date or time (``Z`` allowed; no offset means UTC); ValueError if not."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Node:
    id: str
    parent_id: str | None
    name: str
    path: str
    kind: NodeKind
    revision: int
    created_at: datetime
    created_by: str
    modified_at: datetime
    modified_by: str
    properties: dict[str, Any] = field(default_factory=dict)
    blob_key: str | None = None
    size: int | None = None
    sha1: str | None = None
    mime_type: str | None = None
    asset_state: str | None = None
    extracted: dict[str, Any] = field(default_factory=dict)
    extracted_text: str | None = None
    processing_error: str | None = None
    published: bool = False  # to AEM_PUBLISH, now
    published_at: datetime | None = None  # when it last was

    @property
    def asset_metadata(self) -> dict[str, Any]:
        """What processing extracted, overlaid by what users wrote; a user's null hides an
        extracted value (a removal that survives the next extraction)."""
        merged = {**self.extracted, **self.properties}
        return {k: v for k, v in merged.items() if v is not None}

    def is_live(self, now: datetime | None = None) -> bool:
        """False outside the asset's On/Off time (``onTime``/``offTime``, ISO 8601): such
        an asset answers 404 in the classic API and at /content/dam."""
        if self.kind != "asset":
            return True
        now = now or datetime.now(UTC)
        for key, hidden_from_then in (("onTime", False), ("offTime", True)):
            value = self.properties.get(key)
            if not isinstance(value, str):
                continue
            try:
                moment = parse_instant(value)
            except ValueError:
                continue
            if (now >= moment) if hidden_from_then else (now < moment):
                return False
        return True

    @property
    def is_fragment(self) -> bool:
        return self.kind == "asset" and self.mime_type == FRAGMENT_TYPE

    @property
    def urn(self) -> str:
        return urn(self.id)

    @property
    def etag(self) -> str:
        """Strong ETag of the node: changes with every revision."""
        return f'"{self.id[:8]}-{self.revision}"'

    @property
    def title(self) -> str | None:
        value = self.properties.get("jcr:title")
        return value if isinstance(value, str) else None


class Listed(NamedTuple):
    """A folder's child as a listing shows it: its name, path, kind and type, and the
    users' layer of a folder or content fragment (their titles); an asset's is left
    behind (a listing shows none of it, and parsing it per child was most of a row's
    cost)."""

    name: str
    path: str
    kind: str
    mime_type: str | None
    properties: dict[str, Any]

    @property
    def is_fragment(self) -> bool:
        return self.kind == "asset" and self.mime_type == FRAGMENT_TYPE

    @property
    def title(self) -> str | None:
        value = self.properties.get("jcr:title")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class AssetVersion:
    id: str
    node_id: str
    number: int
    label: str | None
    comment: str | None
    blob_key: str
    size: int
    sha1: str | None  # None until processing has read a direct upload's object
    mime_type: str
    created_at: datetime
    created_by: str

    @property
    def name(self) -> str:
        """AEM numbers versions 1.0, 1.1, ..."""
        return f"1.{self.number - 1}"


@dataclass(frozen=True)
class Rendition:
    id: str
    node_id: str
    name: str
    origin: str  # generated | uploaded
    blob_key: str
    size: int
    mime_type: str
    width: int | None
    height: int | None
    created_at: datetime


@dataclass(frozen=True)
class OutboxEvent:
    """A domain event as the write path committed it (see tree/events.py)."""

    seq: int  # position in commit order
    id: str
    type: str
    node_id: str | None
    path: str | None
    user: str | None
    data: dict[str, Any]
    created_at: datetime
