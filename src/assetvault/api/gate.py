"""The restore gate at the door of an API process (runtime/gate.py): every request
enters the gate before it runs, so a restore waits for the requests in flight and the
requests that arrive meanwhile wait for it (or, past ``gate_wait_seconds``, are answered
503 with Retry-After); and a request that finds the data restored since the last one
first makes this process drop what it held of the state before."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from assetvault.api.errors import error_response
from assetvault.runtime.gate import GateClosed
from assetvault.services import Services

# Not gated: the admin API (a restore itself, and what a harness asks while one runs)
# and the health checks (a restore is no outage).
UNGATED = ("/_assetvault/", "/health")


class RestoreGate:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        self._reopening = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNGATED):
            await self.app(scope, receive, send)
            return
        gate = self.services.gate
        try:
            await gate.enter(self.services.settings.gate_wait_seconds)
        except GateClosed as exc:
            response = error_response(
                Request(scope), exc.status, exc.detail, {"Retry-After": str(exc.retry_after)}
            )
            await response(scope, receive, send)
            return
        try:
            if gate.moved():
                async with self._reopening:
                    if gate.moved():
                        await self.services.reopen()
            await self.app(scope, receive, send)
        finally:
            gate.leave()
