"""Outgoing HTTP through the SSRF guard: every hop (redirects included) is vetted and
the connection goes to the address the guard approved, with the original host in the
Host header and in TLS's SNI, so certificates are still checked against the name.
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from assetvault.adapters.fetch.guard import FetchBlocked, Guard

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# httpcore reads a response 64 KiB at a time, each read a trip through anyio and h11
# (Python); the event loop's transport hands over up to 256 KiB a read, so reads of that
# size cut that work of a large download to a quarter (an import's receive loop).
httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = 256 * 1024
# A Content-Length is ASCII digits (RFC 9110 section 8.6); 19 of them fit in 63 bits.
_LENGTH = re.compile(r"[0-9]{1,19}")


@functools.cache
def ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~0.1 s: every client of the process shares one context.
    return httpx.create_ssl_context()


def declared_length(headers: httpx.Headers) -> int | None:
    """The Content-Length an answer declares, or None when it declares none it can mean
    (absent, not plain digits, or several that differ)."""
    value = headers.get("content-length", "").strip()
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1:
        return None
    (only,) = values
    return int(only) if _LENGTH.fullmatch(only) else None


LOCATION = "assetvault.location"  # where a response's Location header is kept


async def _set_location_aside(response: httpx.Response) -> None:
    """httpx parses a redirect's Location as soon as it arrives, even one it will not
    follow, and a malformed one raises errors of other types than its own (an IDNA
    error, say): the header is taken out of its sight here, and ``stream`` reads it only
    to follow it."""
    location = response.headers.get("location")
    if location is not None:
        del response.headers["location"]
        response.extensions[LOCATION] = location


class ResponseTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the response is larger than {limit} bytes")
        self.limit = limit


@dataclass
class Fetch:
    """A response being streamed, and the URL it finally came from."""

    response: httpx.Response
    url: httpx.URL


class GuardedClient:
    def __init__(
        self,
        guard: Guard,
        *,
        timeout: httpx.Timeout | float = 10.0,
        max_redirects: int = 5,
        user_agent: str = "Assetvault",
        max_connections: int = 20,
    ) -> None:
        self.guard = guard
        self.max_redirects = max_redirects
        # trust_env=False: a proxy from the environment would connect on the guard's behalf
        # to wherever the name resolves then, undoing the pinning.
        self._client = httpx.AsyncClient(
            timeout=timeout,
            verify=ssl_context(),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": user_agent},
            limits=httpx.Limits(max_connections=max_connections),
            event_hooks={"response": [_set_location_aside]},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> GuardedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        follow_redirects: bool = True,
    ) -> AsyncIterator[Fetch]:
        """Send a request; raises guard.FetchBlocked before connecting anywhere refused."""
        hops = self.max_redirects if follow_redirects else 0
        for hop in range(hops + 1):
            target = await self.guard.vet(url)
            pinned = target.url.copy_with(host=target.address)
            extensions: dict[str, Any] = {}
            if target.url.scheme == "https":
                extensions["sni_hostname"] = target.host
            request = self._client.build_request(
                method,
                pinned,
                headers={**(headers or {}), "host": target.url.netloc.decode("ascii")},
                content=content,
                extensions=extensions,
            )
            response = await self._client.send(request, stream=True)
            location = response.extensions.get(LOCATION)
            if follow_redirects and response.status_code in REDIRECT_STATUSES and location:
                await response.aclose()
                if hop == hops:
                    break
                try:
                    url = target.url.join(location)
                    elsewhere = _origin(url) != _origin(target.url)
                except (httpx.InvalidURL, TypeError, ValueError, UnicodeError):
                    # IDNA and port errors included: a clear refusal, never another type.
                    raise FetchBlocked(
                        f"the redirect's Location {location[:200]!r} is no valid URL"
                    ) from None
                if elsewhere and headers:
                    # Credentials are for the origin that was asked, not where it points
                    # (a OneDrive download redirects to a pre-authenticated URL elsewhere).
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                if response.status_code == 303 or (
                    response.status_code in (301, 302) and method == "POST"
                ):
                    method, content = "GET", None
                continue
            try:
                yield Fetch(response, target.url)
            finally:
                await response.aclose()
            return
        raise FetchBlocked(f"more than {hops} redirects")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed response, refusing to hold more than ``limit`` bytes."""
    declared = declared_length(response.headers)
    if declared is not None and declared > limit:
        raise ResponseTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
