"""SQL of the auth domain's hot read: which active token has this digest."""

from __future__ import annotations

from assetvault.adapters.database.reader import Reader
from assetvault.auth.models import Principal


async def active_principal(r: Reader, digest: str) -> Principal | None:
    row = await r.fetch_one(
        "SELECT name, scope FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
        (digest,),
    )
    return Principal(name=row[0], scope=row[1]) if row else None


async def active_principal_by_id(r: Reader, token_id: str) -> Principal | None:
    row = await r.fetch_one(
        "SELECT name, scope FROM api_tokens WHERE id = ? AND revoked_at IS NULL", (token_id,)
    )
    return Principal(name=row[0], scope=row[1]) if row else None


async def active_token_id(r: Reader, name: str) -> str | None:
    row = await r.fetch_one(
        "SELECT id FROM api_tokens WHERE name = ? AND revoked_at IS NULL", (name,)
    )
    return str(row[0]) if row else None
