"""The webhook sender of event deliveries: requests through the SSRF guard, bounded by
one deadline that includes connecting (Adobe: 10 s) and a cap on the answer read."""

from __future__ import annotations

import asyncio
import time

import httpx

from assetvault.adapters.fetch.client import GuardedClient, ResponseTooLarge, read_capped
from assetvault.adapters.fetch.guard import FetchBlocked, Guard
from assetvault.events.models import Outcome


class GuardedWebhookSender:
    def __init__(self, guard: Guard, *, timeout: float, max_body: int) -> None:
        self.guard = guard
        self.timeout = timeout
        self.max_body = max_body
        self._client: GuardedClient | None = None

    @property
    def client(self) -> GuardedClient:
        # Made on first use, inside the loop that sends (the dispatcher's or the API's).
        if self._client is None:
            self._client = GuardedClient(
                self.guard, timeout=self.timeout, max_redirects=0, user_agent="Adobe/1.0"
            )
        return self._client

    async def vet(self, url: str) -> str | None:
        try:
            await self.guard.vet(url)
        except FetchBlocked as exc:
            return exc.reason
        return None

    async def send(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None = None
    ) -> Outcome:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            async with asyncio.timeout(self.timeout):
                async with self.client.stream(
                    method, url, headers=headers, content=body, follow_redirects=False
                ) as fetch:
                    status = fetch.response.status_code
                    try:
                        answer = await read_capped(fetch.response, self.max_body)
                    except ResponseTooLarge:
                        answer = b""  # the status is what counts; the rest is not read
                    return Outcome(status, answer, duration_ms=took())
        except FetchBlocked as exc:
            return Outcome(None, error=f"blocked: {exc.reason}", blocked=True, duration_ms=took())
        except TimeoutError:
            return Outcome(None, error=f"timed out after {self.timeout:g} s", duration_ms=took())
        except httpx.HTTPError as exc:
            return Outcome(
                None, error=f"{type(exc).__name__}: {exc}"[:500] or "error", duration_ms=took()
            )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
