"""The API tests process the same few photos again and again: their service container's
media tools are the real ones, shared by the tests of a process as a server's worker
shares them between jobs (one exiftool kept running), and remembering what they made
of a source (tests/media.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from assetvault.adapters.media.tools import SandboxedMediaTools
from assetvault.processing.ports import MediaTools
from tests.media import RememberedMediaTools

_memory: dict[tuple[object, ...], Any] = {}  # one per test process


@pytest.fixture(scope="session")
def shared_media_tools() -> Iterator[SandboxedMediaTools]:
    tools = SandboxedMediaTools()
    # exiftool dies with the thread that started it (PR_SET_PDEATHSIG): started here, on
    # the main thread, not on the executor thread of one test's event loop.
    tools.exif.read(__file__)
    yield tools
    tools.close()


@pytest.fixture
def media_tools(shared_media_tools: SandboxedMediaTools) -> MediaTools:
    return RememberedMediaTools(shared_media_tools, _memory, close_real=False)
