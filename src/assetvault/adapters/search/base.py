"""The search index interface: what the search service asks of an index. The embedded
default answers from the database itself (SQLite FTS5 + JSON1, or PostgreSQL full
text), inside the caller's transaction, so a search sees every committed change."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from assetvault.search.query import And, FacetRequest, SortKey


class SearchIndex(Protocol):
    async def count(self, conn: AsyncConnection, query: And, cap: int) -> int:
        """How many assets match, counting no further than ``cap``."""
        ...

    async def facet(
        self, conn: AsyncConnection, query: And, facet: FacetRequest
    ) -> list[tuple[Any, int]]:
        """(value, count) buckets of the facet's field over every match, most first."""
        ...

    async def page(
        self,
        conn: AsyncConnection,
        query: And,
        sort: tuple[SortKey, ...],
        after: list[Any] | None,
        limit: int,
    ) -> list[tuple[str, list[Any]]]:
        """Up to ``limit`` matches in sort order (ties broken by id), after the position
        ``after`` (the keys of the last hit seen); each as (node id, its keys)."""
        ...

    async def ranked(self, conn: AsyncConnection, query: And, cap: int) -> list[str]:
        """Ids of up to ``cap`` matches, most relevant first."""
        ...

    async def among(self, conn: AsyncConnection, query: And, ids: list[str]) -> set[str]:
        """Which of ``ids`` match now."""
        ...
