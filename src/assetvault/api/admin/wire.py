"""The JSON bodies of the snapshot and reset routes, read by the server's one JSON
reader (api/body.py: size and depth bounded before parsing) and then validated."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from assetvault.api.body import json_body
from assetvault.errors import InvalidInput

W = TypeVar("W", bound="Wire")


class Wire(BaseModel):
    @classmethod
    def openapi(cls) -> dict[str, Any]:
        """The body as the OpenAPI document shows it (the route reads it itself)."""
        return {
            "requestBody": {"content": {"application/json": {"schema": cls.model_json_schema()}}}
        }


async def parsed(request: Request, model: type[W], *, required: bool = False) -> W:
    data = await json_body(request, if_empty=None if required else b"{}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the body'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"the body is refused: {problems}") from exc
