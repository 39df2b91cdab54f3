"""The ports of search: the index it asks queries of, and the tool that reads the text
of a PDF given as a query (enhanced search).

The embedded default index answers from the database itself (SQLite FTS5 + JSON1, or
PostgreSQL full text: adapters/search/sql.py), inside the caller's transaction, so a
search sees every committed change. An index adapter takes from the domain only this
module and the query types (search/query.py, search/fields.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from assetvault.processing.ports import Limits
from assetvault.search.query import And, FacetRequest, QueryNode, SortKey


class PreparedSearch(Protocol):
    """One query, planned once, for the statements of one search request."""

    async def summary(
        self, facets: tuple[FacetRequest, ...], cap: int
    ) -> tuple[int, list[list[tuple[Any, int]]]]:
        """How many assets match (counting to ``cap`` at least) and, per facet, its
        (value, count) buckets over every match, most first."""
        ...

    async def page(
        self, sort: tuple[SortKey, ...], after: list[Any] | None, limit: int, *, large: bool
    ) -> list[tuple[str, list[Any]]]:
        """Up to ``limit`` matches in sort order (ties broken by id), after the position
        ``after`` (the keys of the last hit seen); each as (node id, its keys)."""
        ...

    async def ranked(self, cap: int) -> list[str]:
        """Ids of up to ``cap`` matches, most relevant first."""
        ...

    async def among(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` match now."""
        ...


class SearchIndex(Protocol):
    async def prepare(
        self, conn: AsyncConnection, query: And, scopes: tuple[QueryNode, ...] = ()
    ) -> PreparedSearch:
        """Plan ``query`` (and the facet ``scopes`` that narrow it) on ``conn``."""
        ...


class DocumentText(Protocol):
    async def pdf_text(self, src: Path, limits: Limits) -> str:
        """The text of a PDF's first pages; raises processing.ports.MediaError."""
        ...
