"""``/_assetvault/faults``: the fault injection rules of a server started with them
(``serve --faults``); refused with 409 on any other (docs/ci.md, "Fault injection")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from assetvault.api.body import json_body
from assetvault.api.deps import require
from assetvault.auth.models import Principal
from assetvault.errors import Conflict, InvalidInput, NotFound
from assetvault.harness.faults import FaultStore, RuleSpec

PREFIX = "/_assetvault/faults"
router = APIRouter(prefix=PREFIX, include_in_schema=False)
Admin = Annotated[Principal, Depends(require("admin"))]


def _store(request: Request) -> FaultStore:
    store: FaultStore | None = request.app.state.faults
    if store is None:
        raise Conflict(
            "fault injection is off on this server: it is only switched on at start, "
            "with `assetvault serve --faults` (or ASSETVAULT_FAULTS=true)"
        )
    return store


def _rule_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise NotFound(f"no fault rule {text!r}")
    return int(text)


def validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


@router.get("")
async def list_rules(request: Request, _: Admin) -> dict[str, Any]:
    return {"faults": _store(request).listing()}


@router.post("")
async def add_rule(request: Request, _: Admin) -> Response:
    doc = await json_body(request)  # bounded and well-formed first, as on every route
    store = _store(request)
    try:
        spec = RuleSpec.model_validate(doc)
    except ValidationError as exc:
        raise InvalidInput(f"the fault rule is refused: {validation_message(exc)}") from None
    try:
        rule = store.add(spec)
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    return JSONResponse(rule, status_code=201, headers={"Location": f"{PREFIX}/{rule['id']}"})


@router.delete("")
async def clear_rules(request: Request, _: Admin) -> dict[str, Any]:
    return {"removed": _store(request).clear()}


@router.get("/{rule_id}")
async def get_rule(request: Request, rule_id: str, _: Admin) -> dict[str, Any]:
    rule = _store(request).get(_rule_id(rule_id))
    if rule is None:
        raise NotFound(f"no fault rule {rule_id}")
    return rule


@router.delete("/{rule_id}")
async def delete_rule(request: Request, rule_id: str, _: Admin) -> Response:
    if not _store(request).delete(_rule_id(rule_id)):
        raise NotFound(f"no fault rule {rule_id}")
    return Response(status_code=204)
