from __future__ import annotations

from pathlib import Path

import pytest

from assetvault.services import Services
from assetvault.tree.models import Node
from tests import media
from tests.conftest import Tokens
from tests.factories import make_asset, process_all


def adobe(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Api-Key": "test-client"}


@pytest.fixture
async def photo(services: Services, tmp_path: Path, tokens: Tokens) -> Node:
    """A processed JPEG with metadata and all renditions."""
    data = media.jpeg_with_metadata(tmp_path / "photo.jpg", 600, 400).read_bytes()
    node = await make_asset(services, "photo.jpg", data, "image/jpeg")
    await process_all(services)
    found = await services.tree.find_by_id(node.id)
    assert found is not None and found.asset_state == "processed"
    return found
