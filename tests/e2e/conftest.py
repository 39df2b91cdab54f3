from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import LiveServer, create_token


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(data_dir=tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture
def admin_token(live_server: LiveServer) -> str:
    return create_token(live_server.data_dir, "e2e-admin", "admin")
