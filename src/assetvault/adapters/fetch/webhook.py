"""The webhook sender of event deliveries: requests through the SSRF guard, bounded by
one deadline that includes connecting (Adobe: 10 s) and a cap on the answer read.

A receiver is an outside party: whatever it answers, or however its answer breaks, the
result is an ``Outcome``, never an exception. Once its status line has come, the status
is what counts: a body that is too large, cut short or not decodable is not read.

Every request is vetted by the guard and sent to the address it approved (the name in
the Host header and in TLS's SNI, so certificates are checked against the name), never
following a redirect. The requests go out through aiohttp, whose parser and buffers are
C: a delivery costs a fraction of the CPU it costs through httpx, and the dispatcher's
loop is what limits how many events a second go out. Each receiver (scheme, name, port
and approved address) has its own pool of kept-alive connections, so a connection made
for one name is never used for another that resolves to the same address.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from assetvault.adapters.fetch.client import ssl_context
from assetvault.adapters.fetch.guard import FetchBlocked, Guard, Target
from assetvault.adapters.fetch.pools import Pool, ReceiverPools
from assetvault.events.models import Outcome

if TYPE_CHECKING:  # imported where a request goes out: the API processes seldom send any
    import aiohttp

USER_AGENT = "Adobe/1.0"


def describe(exc: BaseException) -> str:
    """One line for an attempt's error: the exception's type and message, printable and
    bounded (a receiver may have put anything in it)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
    return "".join(c if c.isprintable() else "?" for c in text)


class _TooLarge(Exception):
    pass


def _new_session(target: Target) -> aiohttp.ClientSession:
    """A receiver's session: no proxy from the environment (it would connect on the
    guard's behalf to wherever the name resolves then), no cookies, no deadline of its
    own (``send`` has it)."""
    import aiohttp

    connector = aiohttp.TCPConnector(
        ssl=ssl_context() if target.url.scheme == "https" else False,
        use_dns_cache=False,  # it is given addresses only, never names
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None),
        headers={"user-agent": USER_AGENT},
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class GuardedWebhookSender:
    def __init__(self, guard: Guard, *, timeout: float, max_body: int) -> None:
        self.guard = guard
        self.timeout = timeout
        self.max_body = max_body
        self._pools = ReceiverPools(_new_session)

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
                target = await self.guard.vet(url)
                pool = self._pools.get(target)
                pool.busy += 1
                try:
                    status, answer = await self._request(pool, target, method, headers, body)
                finally:
                    pool.busy -= 1
                return Outcome(status, answer, duration_ms=took())
        except FetchBlocked as exc:
            return Outcome(None, error=f"blocked: {exc.reason}", blocked=True, duration_ms=took())
        except TimeoutError:
            return Outcome(None, error=f"timed out after {self.timeout:g} s", duration_ms=took())
        except Exception as exc:  # any other failure of the request is a failed attempt too
            return Outcome(None, error=describe(exc), duration_ms=took())

    async def _request(
        self,
        pool: Pool,
        target: Target,
        method: str,
        headers: dict[str, str],
        body: bytes | None,
    ) -> tuple[int, bytes]:
        import aiohttp

        https = target.url.scheme == "https"
        async with pool.session.request(
            method,
            str(target.url.copy_with(host=target.address)),
            headers={**headers, "host": target.url.netloc.decode("ascii")},
            data=body,
            allow_redirects=False,
            server_hostname=target.host if https else None,
        ) as response:
            status = response.status
            try:
                answer = await self._read_capped(response)
            except (_TooLarge, aiohttp.ClientError, ValueError):
                answer = b""  # the status is what counts; the rest is not read
            return status, answer

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared > self.max_body:
            raise _TooLarge()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge()
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self._pools.aclose()
