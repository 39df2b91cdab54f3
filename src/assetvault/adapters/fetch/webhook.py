"""The webhook sender of event deliveries: requests through the SSRF guard, bounded by
one deadline that includes connecting (Adobe: 10 s) and a cap on the answer read.

A receiver is an outside party: whatever it answers, or however its answer breaks, the
result is an ``Outcome``, never an exception. Once its status line has come, the status
is what counts: a body that is too large, cut short or not decodable is not read."""

from __future__ import annotations

import asyncio
import time

import httpx

from assetvault.adapters.fetch.client import GuardedClient, ResponseTooLarge, read_capped
from assetvault.adapters.fetch.guard import FetchBlocked, Guard
from assetvault.events.models import Outcome


def describe(exc: BaseException) -> str:
    """One line for an attempt's error: the exception's type and message, printable and
    bounded (a receiver may have put anything in it)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
    return "".join(c if c.isprintable() else "?" for c in text)


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
                    except (ResponseTooLarge, httpx.HTTPError):
                        answer = b""  # the status is what counts; the rest is not read
                    return Outcome(status, answer, duration_ms=took())
        except FetchBlocked as exc:
            return Outcome(None, error=f"blocked: {exc.reason}", blocked=True, duration_ms=took())
        except TimeoutError:
            return Outcome(None, error=f"timed out after {self.timeout:g} s", duration_ms=took())
        except Exception as exc:  # any other failure of the request is a failed attempt too
            return Outcome(None, error=describe(exc), duration_ms=took())

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
