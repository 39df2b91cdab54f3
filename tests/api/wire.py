"""Whether a response can go out on the wire as the ASGI servers write it: a header that
h11 or uvicorn's httptools protocol refuses makes the server drop the connection with
no response at all, which an in-process client would never notice."""

from __future__ import annotations

import re

import h11
import httpx

# Field values as RFC 9110 has them, without obs-text: visible ASCII, spaces and tabs.
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e]*")


def assert_well_formed(response: httpx.Response) -> None:
    """Every header of ``response`` is one a server writes (h11 builds it) and that
    holds visible ASCII only."""
    raw = response.headers.raw
    for name, value in raw:
        assert _FIELD_VALUE.fullmatch(value), (response.request.url, name, value)
    try:
        h11.Response(status_code=response.status_code, headers=raw)
    except h11.LocalProtocolError as exc:  # pragma: no cover - the assertion's message
        raise AssertionError(f"{response.request.url}: {exc}") from exc
