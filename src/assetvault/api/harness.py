"""The ASGI middlewares of fault injection and the request journal (docs/ci.md).

Neither is installed unless the server was started with it (``serve --faults``,
``serve --journal N``), so a server without them runs not one instruction of theirs.
The admin API's own requests (/_assetvault/...) are neither faulted nor journaled: a
rule can always be cleared, and reading the journal does not fill it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assetvault.api.errors import error_response
from assetvault.harness.faults import FaultStore, Rule
from assetvault.harness.journal import (
    REQUEST_HEADERS,
    RESPONSE_HEADERS,
    SECRET_PARAMETERS,
    Entry,
    JournalStore,
)
from assetvault.settings import Settings

log = logging.getLogger("assetvault.faults")

ADMIN_PREFIX = "/_assetvault/"
FAULT_KEY = "assetvault.fault"  # the scope key naming the rule that hit a request


class FaultDrop(Exception):
    """Raised after part of a response went out: the server closes the connection."""


class _QuietDrops(logging.Filter):
    """An exception after a started response is logged with its traceback; a drop asked
    for by a rule is logged once, as a warning, by the middleware instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], FaultDrop))


_QUIET = _QuietDrops()


class FaultInjection:
    """Answers, delays or cuts off the requests a rule hits. It sits inside the body
    drain, so an injected early answer (a 503 to a part PUT) reaches a client that sends
    its whole body first, as the server's own refusals do."""

    def __init__(self, app: ASGIApp, *, store: FaultStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        rule = self.store.first_hit(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        scope[FAULT_KEY] = rule.id
        spec = rule.spec
        if spec.delay:
            await asyncio.sleep(spec.delay)
        app = self.app if spec.status is None else _injected(scope, rule)
        if spec.drop:
            log.warning("fault rule %d cuts off %s %s", rule.id, scope["method"], scope["path"])
            send = _cut_off(send)
        await app(scope, receive, send)


def _injected(scope: Scope, rule: Rule) -> Response:
    spec = rule.spec
    assert spec.status is not None
    message = spec.message or f"fault injected by Assetvault (rule {rule.id})"
    if spec.format == "plain":
        return PlainTextResponse(message, status_code=spec.status, headers=spec.headers)
    # The same responder as the server's own errors: problem+json under /adobe and for
    # part PUTs, Siren core/response under /api and /content.
    return error_response(Request(scope), spec.status, message, spec.headers)


def _cut_off(send: Send) -> Send:
    """A send that lets the headers and half of the body's first bytes out, then
    raises FaultDrop, on which uvicorn closes the connection. A response without a
    body is announced with one byte that never comes."""
    held: list[Message] = []

    async def cut(message: Message) -> None:
        if message["type"] == "http.response.start":
            held.append(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if not body and more:
            return  # nothing to cut yet
        start = held.pop() if held else None
        if start is not None:
            if not body:
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                start = {**start, "headers": [*headers, (b"content-length", b"1")]}
            await send(start)
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        raise FaultDrop("the fault rule cut the response off")

    return cut


class RequestJournal:
    """Records each request when its response's last bytes are about to leave, so a
    client that has its answer finds the request in the journal."""

    def __init__(self, app: ASGIApp, *, store: JournalStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        at = time.time()
        sizes = [0, 0]  # request, response bytes
        answer: dict[str, Any] = {"status": 500, "headers": {}, "recorded": False}

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                sizes[0] += len(message.get("body", b""))
            return message

        def record(dropped: bool) -> None:
            answer["recorded"] = True
            headers = Headers(scope=scope)
            self.store.record(
                Entry(
                    at=at,
                    method=scope["method"],
                    path=scope["path"],
                    query=_query(scope.get("query_string", b"")),
                    status=answer["status"],
                    ms=(time.perf_counter() - started) * 1000,
                    request_bytes=sizes[0],
                    response_bytes=sizes[1],
                    request_headers={k: headers[k] for k in REQUEST_HEADERS if k in headers},
                    response_headers=answer["headers"],
                    fault=scope.get(FAULT_KEY),
                    dropped=dropped,
                )
            )

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                found = Headers(raw=message.get("headers", []))
                answer["headers"] = {k: found[k] for k in RESPONSE_HEADERS if k in found}
            elif message["type"] == "http.response.body":
                sizes[1] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    record(dropped=False)
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BaseException as exc:
            if not answer["recorded"]:
                record(dropped=isinstance(exc, FaultDrop))
            raise
        if not answer["recorded"]:
            record(dropped=True)  # the response never ended: the client went away


def _query(raw: bytes) -> str:
    """The query string, values of credential parameters (part URIs' tokens) hidden."""
    if not raw:
        return ""
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    if not any(k in SECRET_PARAMETERS for k, _ in pairs):
        return raw.decode("latin-1")
    return urlencode([(k, "[hidden]" if k in SECRET_PARAMETERS else v) for k, v in pairs])


def stores(settings: Settings) -> tuple[FaultStore | None, JournalStore | None]:
    """The harness stores of an app: None for a feature the server runs without."""
    faults = FaultStore(settings.data_dir) if settings.faults else None
    size = settings.journal_size
    journal = JournalStore(settings.data_dir, size) if size else None
    if faults is not None:
        # uvicorn's log, and the app's own handler of unexpected errors, see it too.
        for name in ("uvicorn.error", "assetvault.api"):
            logging.getLogger(name).addFilter(_QUIET)  # added once, however many apps
    return faults, journal
