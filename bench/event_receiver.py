"""A fast webhook receiver for bench/events.py (an ASGI app under uvicorn, in its own
process): answers the challenge, counts the events it is sent, and tells the count."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import orjson

received = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global received
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = b""
    if scope["method"] == "GET" and scope["path"] == "/count":
        answer = str(received).encode()
    elif scope["method"] == "GET":
        answer = parse_qs(scope["query_string"].decode()).get("challenge", [""])[0].encode()
    elif scope["method"] == "POST":
        parsed = orjson.loads(body)
        received += len(parsed) if isinstance(parsed, list) else 1
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": answer})
