"""Keeps the sweep and blob-referencing writes apart inside one server process.

Writes that store a blob and then commit a row referring to it hold the guard shared,
so any number run at once; the sweep's "which blobs are unreferenced, delete them" step
holds it alone, so it never sees a blob that is stored but not yet referenced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class BlobGuard:
    def __init__(self) -> None:
        self._users = 0
        self._collecting = False
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def using(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._collecting)
            self._users += 1
        try:
            yield
        finally:
            async with self._changed:
                self._users -= 1
                self._changed.notify_all()

    @asynccontextmanager
    async def collecting(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._collecting)
            self._collecting = True  # new users wait from here on
            await self._changed.wait_for(lambda: self._users == 0)
        try:
            yield
        finally:
            async with self._changed:
                self._collecting = False
                self._changed.notify_all()
