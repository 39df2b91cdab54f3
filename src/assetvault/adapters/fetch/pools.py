"""Kept-alive aiohttp sessions, one per receiver, shared by the adapters that send to
outside parties with aiohttp (webhook.py's deliveries, client.py's file receiving).

A receiver is its scheme, host name, port and the address the SSRF guard approved: a
connection made (and its certificate checked) for one name is never used for another
that resolves to the same address. Sessions belong to the event loop they were made in
(a process may run several loops over its life). At most ``MAX_RECEIVERS`` are kept;
past it, the ones idle longest (none busy) are closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assetvault.adapters.fetch.guard import Target

if TYPE_CHECKING:
    import aiohttp

MAX_RECEIVERS = 64  # pools kept; past it, the ones idle longest are closed
IDLE_SECONDS = 60.0  # a pool unused that long may be closed


@dataclass
class Pool:
    session: aiohttp.ClientSession
    busy: int = 0  # requests in flight on it (a user that counts them keeps it open)
    used: float = field(default_factory=time.monotonic)


class ReceiverPools:
    """One session per receiver, made by ``make`` when a receiver has none open."""

    def __init__(self, make: Callable[[Target], aiohttp.ClientSession]) -> None:
        self._make = make
        self._pools: dict[tuple[str, str, int, str], Pool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self, target: Target) -> Pool:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # sessions belong to the loop they were made in
            self._pools, self._loop = {}, loop
        key = (target.url.scheme, target.host, target.port, target.address)
        pool = self._pools.get(key)
        if pool is None or pool.session.closed:
            self._evict()
            pool = self._pools[key] = Pool(self._make(target))
        pool.used = time.monotonic()
        return pool

    def _evict(self) -> None:
        if len(self._pools) < MAX_RECEIVERS:
            return
        now = time.monotonic()
        idle = sorted(
            (p.used, key)
            for key, p in self._pools.items()
            if p.busy == 0 and now - p.used > IDLE_SECONDS
        )
        for _, key in idle[: len(self._pools) - MAX_RECEIVERS + 1]:
            asyncio.get_running_loop().create_task(self._pools.pop(key).session.close())

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.session.close()
