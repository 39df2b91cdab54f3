"""Who is calling, and what they may do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")


@dataclass(frozen=True)
class Principal:
    name: str
    scope: Scope

    def allows(self, needed: Scope) -> bool:
        """Scopes are ranked: admin can do what write can, write what read can."""
        return SCOPES.index(self.scope) >= SCOPES.index(needed)
