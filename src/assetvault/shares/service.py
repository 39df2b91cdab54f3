"""Share links: read-only links to an asset or a folder that work without a token.

The secret is 32 random bytes (``secrets``), handed out once, in the link; the database
keeps only its SHA-256, as for API tokens, so a copy of the database opens nothing. Every
use reads the link's row (no cache), so a revocation or an expiry holds from the next
request on, in every API process. The service answers only what a link grants: the
shared asset, or the shared folder and what is below it (docs/hostile-input.md, "Share
links").
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.tables import share_links
from assetvault.auth.models import Principal
from assetvault.errors import AssetvaultError, Forbidden, InvalidInput, NotFound
from assetvault.relations.service import parse_urn
from assetvault.settings import Settings
from assetvault.shares.models import NewShareLink, SharedTarget, ShareLink
from assetvault.tree.models import Node
from assetvault.tree.paths import URN_PREFIX
from assetvault.tree.service import TreeService

SECRET_PREFIX = "avs_"
DAM_ROOT = "/content/dam"


class LinkGone(AssetvaultError):
    """A link that existed but no longer opens anything: expired, revoked, or what it
    shared was deleted. 410, so a browser or script can tell it from a typo (404)."""

    status = 410
    title = "Gone"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored one is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _link(row: Any) -> ShareLink:
    return ShareLink(
        id=row.id,
        node_id=row.node_id,
        created_by=row.created_by,
        created_at=_utc(row.created_at),
        expires_at=_utc(row.expires_at),
        revoked_at=_utc(row.revoked_at) if row.revoked_at is not None else None,
    )


class ShareService:
    def __init__(self, settings: Settings, db: Database, tree: TreeService) -> None:
        self.settings = settings
        self.db = db
        self.tree = tree

    async def _target_node(self, target: str) -> Node:
        if target.startswith(URN_PREFIX):
            node = await self.tree.find_by_id(parse_urn(target, "target"))
            if node is None:
                raise NotFound(f"{target} does not exist")
        elif target == DAM_ROOT or target.startswith(DAM_ROOT + "/"):
            node = await self.tree.get(target.rstrip("/"))
        else:
            raise InvalidInput(
                "target must be an asset or folder path below /content/dam or an asset's URN"
            )
        if node.path == DAM_ROOT:
            raise InvalidInput("the DAM root cannot be shared: share a folder below it")
        return node

    async def create(
        self, principal: Principal, target: str, *, expires_in: float | None = None
    ) -> NewShareLink:
        if not principal.allows("write"):
            raise Forbidden(f"this token has the {principal.scope} scope; write is needed")
        limit = self.settings.share_link_max_seconds
        seconds = self.settings.share_link_default_seconds if expires_in is None else expires_in
        if not 60 <= seconds <= limit:
            raise InvalidInput(f"expiresIn must be between 60 and {limit} seconds")
        node = await self._target_node(target)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        link = ShareLink(
            id=str(uuid.uuid4()),
            node_id=node.id,
            created_by=principal.name,
            created_at=now,
            expires_at=now + timedelta(seconds=seconds),
            revoked_at=None,
        )
        async with self.db.write() as conn:
            await conn.execute(
                insert(share_links).values(
                    id=link.id,
                    secret_hash=digest(secret),
                    node_id=link.node_id,
                    created_by=link.created_by,
                    created_at=link.created_at,
                    expires_at=link.expires_at,
                )
            )
        return NewShareLink(link=link, node=node, secret=secret)

    async def list_links(self, principal: Principal) -> list[tuple[ShareLink, Node | None]]:
        """The principal's own links, newest first; an admin's list holds everyone's."""
        if not principal.allows("write"):
            raise Forbidden(f"this token has the {principal.scope} scope; write is needed")
        query = select(share_links).order_by(share_links.c.created_at.desc())
        if not principal.allows("admin"):
            query = query.where(share_links.c.created_by == principal.name)
        async with self.db.read() as conn:
            links = [_link(row) for row in await conn.execute(query)]
        return [(link, await self.tree.find_by_id(link.node_id)) for link in links]

    async def revoke(self, principal: Principal, link_id: str) -> ShareLink:
        """Revokes a link of the principal's (any link, for an admin). Another's link is
        "not found", so ids tell nobody what others shared."""
        if not principal.allows("write"):
            raise Forbidden(f"this token has the {principal.scope} scope; write is needed")
        condition = [share_links.c.id == link_id]
        if not principal.allows("admin"):
            condition.append(share_links.c.created_by == principal.name)
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            row = (await conn.execute(select(share_links).where(*condition))).first()
            if row is None:
                raise NotFound(f"no share link {link_id!r}")
            if row.revoked_at is None:
                await conn.execute(
                    update(share_links).where(share_links.c.id == link_id).values(revoked_at=now)
                )
            link = _link(row)
        return ShareLink(**{**link.__dict__, "revoked_at": link.revoked_at or now})

    async def open(self, secret: str) -> SharedTarget:
        """What the link with this secret shares, or why it opens nothing."""
        if not secret.startswith(SECRET_PREFIX) or len(secret) > 100:
            raise NotFound("this share link does not exist")
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(share_links).where(share_links.c.secret_hash == digest(secret))
                )
            ).first()
        if row is None:
            raise NotFound("this share link does not exist")
        link = _link(row)
        if link.revoked_at is not None:
            raise LinkGone("this share link was revoked")
        if datetime.now(UTC) >= link.expires_at:
            raise LinkGone(f"this share link expired at {link.expires_at.isoformat()}")
        node = await self.tree.find_by_id(link.node_id)
        if node is None or not node.is_live():
            raise LinkGone("what this link shared no longer exists")
        return SharedTarget(link=link, node=node)

    async def item(self, shared: SharedTarget, segments: list[str]) -> Node:
        """The node at ``segments`` below a shared folder (the shared node itself for no
        segments). The segments come from ``paths.decode_segments``: no ``.``, ``..``,
        empty or slash-holding segment reaches here, so the path stays below the folder."""
        if not segments:
            return shared.node
        if shared.node.kind != "folder":
            raise NotFound("this link shares one asset and nothing below it")
        path = "/".join([shared.node.path, *segments])
        node = await self.tree.find(path)
        if node is None or not node.is_live():
            raise NotFound("this shared folder holds nothing at that path")
        return node

    async def children(self, folder: Node, *, limit: int) -> tuple[list[Node], int]:
        nodes, total = await self.tree.list_children(folder, limit=limit)
        return [n for n in nodes if n.is_live()], total
