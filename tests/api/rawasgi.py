"""Calls the ASGI app with a raw path exactly as given: HTTP clients normalise ``..``
and re-encode paths, which would hide what the server does with them."""

from __future__ import annotations

import json
from typing import Any

from assetvault.app import create_app
from assetvault.services import Services


async def raw_request(
    services: Services, method: str, raw_path: str, *, body: bytes = b"", headers: dict[str, str]
) -> tuple[int, Any]:
    from urllib.parse import unquote

    app = create_app(services=services)
    path, _, query = raw_path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"host", b"assetvault.test"), (b"content-length", str(len(body)).encode())],
        "server": ("assetvault.test", 80),
        "client": ("127.0.0.1", 1234),
    }
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(payload) if payload else None
