"""What the share-link service hands out: plain, immutable values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from assetvault.tree.models import Node


@dataclass(frozen=True)
class ShareLink:
    """A link as its creator and the admins see it: never its secret."""

    id: str
    node_id: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "active"


@dataclass(frozen=True)
class NewShareLink:
    """A link just made: the only moment its secret exists outside the link itself."""

    link: ShareLink
    node: Node
    secret: str


@dataclass(frozen=True)
class SharedTarget:
    """What a valid link opens: the link and the node it shares, where it is now."""

    link: ShareLink
    node: Node
