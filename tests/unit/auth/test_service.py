from __future__ import annotations

import pytest

from assetvault.auth.models import Principal
from assetvault.errors import AlreadyExists, InvalidInput, NotFound
from assetvault.services import Services


def test_scopes_are_ranked() -> None:
    assert Principal("a", "admin").allows("write") and Principal("a", "admin").allows("read")
    assert Principal("w", "write").allows("read") and not Principal("w", "write").allows("admin")
    assert not Principal("r", "read").allows("write")


async def test_create_verify_revoke(services: Services) -> None:
    auth = services.auth
    token = await auth.create_token("ci", "write")
    assert token.startswith("av_") and len(token) > 40
    assert await auth.verify(token) == Principal("ci", "write")
    assert await auth.verify(token + "x") is None
    with pytest.raises(AlreadyExists):
        await auth.create_token("ci", "read")
    with pytest.raises(InvalidInput):
        await auth.create_token("x", "root")
    await auth.revoke("ci")
    assert await auth.verify(token) is None
    with pytest.raises(NotFound):
        await auth.revoke("ci")
    [(name, scope, _, revoked)] = await auth.list_tokens()
    assert (name, scope, revoked) == ("ci", "write", True)
