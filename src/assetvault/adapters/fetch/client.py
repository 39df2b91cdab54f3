"""Outgoing HTTP through the SSRF guard: every hop (redirects included) is vetted and
the connection goes to the address the guard approved, with the original host in the
Host header and in TLS's SNI, so certificates are still checked against the name.

Two ways out share the guard and the redirect rules: ``stream`` (httpx) for the
providers' API calls, whose answers are small, and ``receive`` (aiohttp, whose parser
and buffers are C) for the files an import fetches, where httpx's receive loop (h11 and
anyio, in Python) cost several times the CPU of the bytes' own hashing and writing.
"""

from __future__ import annotations

import functools
import re
import ssl
import zlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from assetvault.adapters.fetch.guard import FetchBlocked, Guard, Target
from assetvault.adapters.fetch.pools import ReceiverPools

if TYPE_CHECKING:
    # Imported where a file is first received: API processes that never import need
    # not load it (tests/unit/runtime/test_api.py).
    import aiohttp

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


def declared_length(headers: httpx.Headers | Mapping[str, str]) -> int | None:
    """The Content-Length an answer declares, or None when it declares none it can mean
    (absent, not plain digits, or several that differ)."""
    getall = getattr(headers, "getall", None)  # aiohttp's headers: each field apart
    if getall is not None:
        value = ",".join(getall("content-length", [])).strip()
    else:
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


class ReceiveFailed(Exception):
    """A ``receive`` exchange that failed on the way: the connection (refused, cut,
    timed out), the answer's framing or its content coding. Worth another attempt."""

    def __init__(self, cause: BaseException) -> None:
        text = " ".join(f"{type(cause).__name__}: {cause}".split())[:500]
        super().__init__(text)
        self.timed_out = isinstance(cause, TimeoutError)


# Content codings ``receive`` asks for and decodes, as httpx does without brotli.
DECODERS = ("gzip", "deflate")
DECODED_PIECE = 1024 * 1024  # a decoder's output at most per step (bombs stay small)
# aiohttp stops reading the socket past twice this much unread; the event loop hands
# over up to 256 KiB a read, so a batch of reads waits for the consumer at a time.
RECEIVE_BUFFER = 1024 * 1024


class _Inflate:
    """One content coding's decoder: gzip, or deflate (zlib-wrapped, or raw as some
    servers send it), its output in bounded pieces."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        wbits = zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS
        self._obj = zlib.decompressobj(wbits)
        self._first = True

    def feed(self, data: bytes) -> list[bytes]:
        try:
            out = [self._obj.decompress(data, DECODED_PIECE)]
        except zlib.error:
            if self.coding != "deflate" or not self._first:
                raise
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            out = [self._obj.decompress(data, DECODED_PIECE)]
        self._first = False
        while self._obj.unconsumed_tail:
            out.append(self._obj.decompress(self._obj.unconsumed_tail, DECODED_PIECE))
        return out

    def end(self) -> bytes:
        return self._obj.flush()


class Received:
    """An answer of ``receive``: its status and headers, its body as it is received (or
    decoded, under a Content-Encoding), and how many bytes came over the wire."""

    def __init__(self, response: aiohttp.ClientResponse, url: httpx.URL) -> None:
        self._response = response
        self.url = url  # the URL it finally came from
        self.status = response.status
        self.headers = response.headers
        self.wire_bytes = 0

    def declared_length(self) -> int | None:
        return declared_length(self.headers)

    async def chunks(self, limit: int) -> AsyncIterator[bytes]:
        """The body's bytes as they come, decoded; ResponseTooLarge past ``limit``
        decoded bytes, ReceiveFailed when the connection or the coding fails."""
        import aiohttp

        codings = [
            c.strip().lower()
            for value in self.headers.getall("content-encoding", [])
            for c in value.split(",")
        ]
        # Applied in order, so decoded in the reverse order; codings it does not know
        # (nor asked for) are left as they are, as httpx leaves them.
        decoders = [_Inflate(c) for c in reversed(codings) if c in DECODERS]
        received = 0
        content = self._response.content
        try:
            while True:
                data = await content.readany()
                if not data:
                    break
                self.wire_bytes += len(data)
                pieces = [data]
                for decoder in decoders:
                    pieces = [out for piece in pieces for out in decoder.feed(piece)]
                for piece in pieces:
                    if not piece:
                        continue
                    received += len(piece)
                    if received > limit:
                        raise ResponseTooLarge(limit)
                    yield piece
            for i, decoder in enumerate(decoders):
                pieces = [decoder.end()]
                for later in decoders[i + 1 :]:
                    pieces = [out for piece in pieces for out in later.feed(piece)]
                for piece in pieces:
                    received += len(piece)
                    if received > limit:
                        raise ResponseTooLarge(limit)
                    if piece:
                        yield piece
        except (aiohttp.ClientError, zlib.error) as exc:
            raise ReceiveFailed(exc) from None


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
        self._timeout = timeout
        self._user_agent = user_agent
        # Made by the first request: its TLS context loads the CA bundle (tens of ms and
        # about a MiB), which a process that never fetches (most API processes) skips.
        self._http: httpx.AsyncClient | None = None
        # The same limits for ``receive`` (aiohttp): no deadline of the whole exchange
        # (the caller has it), the connect and read time-outs of ``stream``.
        t = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._receive_timeouts = (t.connect, t.read)
        self._receive_headers = {
            "user-agent": user_agent,
            "accept": "*/*",
            "accept-encoding": ", ".join(DECODERS),
        }
        self._max_connections = max_connections
        self._pools = ReceiverPools(self._new_session)

    @property
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # trust_env=False: a proxy from the environment would connect on the guard's
            # behalf to wherever the name resolves then, undoing the pinning.
            self._http = httpx.AsyncClient(
                timeout=self._timeout,
                verify=ssl_context(),
                follow_redirects=False,
                trust_env=False,
                headers={"user-agent": self._user_agent},
                limits=httpx.Limits(max_connections=self._max_connections),
                event_hooks={"response": [_set_location_aside]},
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        await self._pools.aclose()

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
                url, method, content, headers = _next_hop(
                    target, location, response.status_code, method, content, headers
                )
                continue
            try:
                yield Fetch(response, target.url)
            finally:
                await response.aclose()
            return
        raise FetchBlocked(f"more than {hops} redirects")

    def _new_session(self, target: Target) -> aiohttp.ClientSession:
        """A receiver's session (pools.py keeps one per receiver): no proxy from the
        environment (it would connect on the guard's behalf to wherever the name resolves
        then), no cookies kept from one import for the next, bodies as they came over the
        wire (``Received`` decodes them)."""
        import aiohttp

        connector = aiohttp.TCPConnector(
            ssl=ssl_context() if target.url.scheme == "https" else False,
            use_dns_cache=False,  # it is given addresses only, never names
            limit=self._max_connections,
        )
        return aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=self._receive_timeouts[0],
                sock_read=self._receive_timeouts[1],
            ),
            headers=self._receive_headers,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            read_bufsize=RECEIVE_BUFFER,
        )

    @asynccontextmanager
    async def receive(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> AsyncIterator[Received]:
        """Send a request for a file, following redirects as ``stream`` does (each hop
        vetted, credentials kept for the origin asked). Raises guard.FetchBlocked before
        connecting anywhere refused and ReceiveFailed when the exchange fails."""
        import aiohttp
        import yarl  # aiohttp's URLs: with it, where a file is first received

        hops = self.max_redirects
        for hop in range(hops + 1):
            target = await self.guard.vet(url)
            pinned = target.url.copy_with(host=target.address)
            https = target.url.scheme == "https"
            session = self._pools.get(target).session
            try:
                response = await session.request(
                    method,
                    yarl.URL(str(pinned), encoded=True),
                    headers={**(headers or {}), "host": target.url.netloc.decode("ascii")},
                    data=content,
                    allow_redirects=False,
                    server_hostname=target.host if https else None,
                )
            except (aiohttp.ClientError, ValueError) as exc:
                raise ReceiveFailed(exc) from None
            try:
                location = response.headers.get("location")
                if response.status in REDIRECT_STATUSES and location:
                    if hop == hops:
                        break
                    url, method, content, headers = _next_hop(
                        target, location, response.status, method, content, headers
                    )
                    continue
                yield Received(response, target.url)
                return
            finally:
                response.release()
        raise FetchBlocked(f"more than {hops} redirects")


def _next_hop(
    target: Target,
    location: str,
    status: int,
    method: str,
    content: bytes | None,
    headers: dict[str, str] | None,
) -> tuple[httpx.URL, str, bytes | None, dict[str, str] | None]:
    """Where a redirect points, and the request to send there."""
    try:
        url = target.url.join(location)
        elsewhere = _origin(url) != _origin(target.url)
    except (httpx.InvalidURL, TypeError, ValueError, UnicodeError):
        # IDNA and port errors included: a clear refusal, never another type.
        raise FetchBlocked(f"the redirect's Location {location[:200]!r} is no valid URL") from None
    if elsewhere and headers:
        # Credentials are for the origin that was asked, not where it points (a
        # OneDrive download redirects to a pre-authenticated URL elsewhere).
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    if status == 303 or (status in (301, 302) and method == "POST"):
        method, content = "GET", None
    return url, method, content, headers


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
