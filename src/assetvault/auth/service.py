"""API tokens: made by ``assetvault token create``, stored as SHA-256 digests only."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.tables import api_tokens
from assetvault.auth import repository as auth_repo
from assetvault.auth.models import SCOPES, Principal, Scope
from assetvault.errors import AlreadyExists, InvalidInput, NotFound

TOKEN_PREFIX = "av_"
# Verified tokens are remembered briefly so a burst of requests costs one lookup; a
# revoked token stops working within this many seconds.
CACHE_SECONDS = 5.0


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def forget_cached(self) -> None:
        """Forget every token looked up (after a restore replaced the tokens)."""
        self._cache.clear()

    async def create_token(self, name: str, scope: str) -> str:
        if scope not in SCOPES:
            raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}")
        if not name.strip():
            raise InvalidInput("a token needs a name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    insert(api_tokens).values(
                        id=str(uuid.uuid4()),
                        name=name,
                        scope=scope,
                        token_hash=_digest(token),
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError as exc:
            raise AlreadyExists(f"a token named {name!r} exists") from exc
        return token

    async def revoke(self, name: str) -> None:
        async with self.db.write() as conn:
            result = await conn.execute(
                update(api_tokens)
                .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        if result.rowcount == 0:
            raise NotFound(f"no active token named {name!r}")
        self._cache.clear()

    async def list_tokens(self) -> list[tuple[str, Scope, datetime, bool]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(
                    api_tokens.c.name,
                    api_tokens.c.scope,
                    api_tokens.c.created_at,
                    api_tokens.c.revoked_at,
                ).order_by(api_tokens.c.created_at)
            )
            return [(r.name, r.scope, r.created_at, r.revoked_at is not None) for r in rows]

    async def verify(self, token: str) -> Principal | None:
        digest = _digest(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.db.reader() as r:  # a point read on the driver: no thread hop
            principal = await auth_repo.active_principal(r, digest)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + CACHE_SECONDS, principal)
        return principal

    async def token_id(self, name: str) -> str | None:
        """The id of the active token named ``name`` (media URLs carry it, never the
        token or its name)."""
        async with self.db.reader() as r:
            return await auth_repo.active_token_id(r, name)

    async def principal_by_id(self, token_id: str) -> Principal | None:
        """The principal of the active token with this id, read now (no cache: a revoked
        token's media URLs stop at once)."""
        async with self.db.reader() as r:
            return await auth_repo.active_principal_by_id(r, token_id)
