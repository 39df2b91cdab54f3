"""``/_assetvault/journal``: the last requests of a server started with a journal
(``serve --journal N``); refused with 409 on any other (docs/ci.md, "Request journal")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from assetvault.api.deps import require
from assetvault.auth.models import Principal
from assetvault.errors import Conflict, InvalidInput
from assetvault.harness.journal import Filter, JournalStore

router = APIRouter(prefix="/_assetvault/journal", include_in_schema=False)
Admin = Annotated[Principal, Depends(require("admin"))]
MAX_LIMIT = 100_000


def _store(request: Request) -> JournalStore:
    store: JournalStore | None = request.app.state.journal
    if store is None:
        raise Conflict(
            "the request journal is off on this server: it is only switched on at start, "
            "with `assetvault serve --journal N` (or ASSETVAULT_JOURNAL_SIZE=N)"
        )
    return store


def _int(value: str | None, name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}")
    return int(value)


def _status(value: str | None) -> int | None:
    """``503`` for one status, ``5xx`` for a class."""
    if value is None:
        return None
    if len(value) == 3 and value[0] in "12345" and value[1:].lower() == "xx":
        return int(value[0])
    found = _int(value, "status", 100, 599)
    assert found is not None
    return found


def _since(value: str | None) -> float | None:
    """Unix seconds, or an ISO 8601 time with its offset."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            "since must be Unix seconds or an ISO 8601 time such as 2026-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput("since needs a time zone offset (Z for UTC)")
    return moment.timestamp()


def _filter(request: Request) -> Filter:
    q = request.query_params
    method = q.get("method")
    if method is not None and not (method.isascii() and method.isalpha() and len(method) <= 16):
        raise InvalidInput("method must be an HTTP method such as POST")
    path = q.get("path")
    if path is not None and not 0 < len(path) <= 1000:
        raise InvalidInput("path must be a glob of 1 to 1000 characters")
    return Filter(
        method=method,
        path=path,
        status=_status(q.get("status")),
        since=_since(q.get("since")),
        after=_int(q.get("after"), "after", 0, 2**62),
        limit=_int(q.get("limit"), "limit", 1, MAX_LIMIT) or 1000,
    )


@router.get("")
async def list_entries(request: Request, _: Admin) -> dict[str, Any]:
    store = _store(request)
    return {"size": store.size, "entries": store.entries(_filter(request))}


@router.delete("")
async def clear_entries(request: Request, _: Admin) -> dict[str, Any]:
    return {"removed": _store(request).clear()}
