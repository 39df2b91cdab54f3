"""The ports of search: the index it asks queries of, and the tool that reads the text
of a PDF given as a query (enhanced search).

Two kinds of index fill the SearchIndex port: one in the database itself (PostgreSQL
full text, adapters/search/sql.py), current in the caller's transaction; and one kept
apart from the database (the embedded Tantivy index, adapters/search/tantivy.py), a
DocumentIndex fed by the search indexer from the outbox (search/indexer.py). An index
adapter takes from the domain only this module, search/models.py and the query types
(search/query.py, search/fields.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from assetvault.adapters.database.connection import Connection
from assetvault.adapters.database.reader import Reader
from assetvault.processing.ports import Limits
from assetvault.search.models import IndexedAsset
from assetvault.search.query import And, FacetRequest, QueryNode, SortKey


class PreparedSearch(Protocol):
    """One query, planned once, for the statements of one search request."""

    # Whether summary and page (or ranked) may run at the same time (a database
    # connection runs one statement at a time; the embedded index does not mind).
    concurrent: bool

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

    async def counted_ranked(self, cap: int, count_to: int) -> tuple[int, list[str]]:
        """How many assets match (counting to ``count_to`` at least) and the ids of the
        best ``cap``: what the first page of a relevance search without facets needs (an
        index may do both in one pass over the hits)."""
        ...

    async def ranked_uuids(self, cap: int) -> bytes:
        """The same ranking as ``ranked``, each id as its UUID's 16 bytes (what a
        relevance snapshot keeps)."""
        ...

    async def among(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` match now."""
        ...


class SearchIndex(Protocol):
    async def prepare(
        self, conn: Connection, query: And, scopes: tuple[QueryNode, ...] = ()
    ) -> PreparedSearch:
        """Plan ``query`` (and the facet ``scopes`` that narrow it) on ``conn``."""
        ...


@runtime_checkable
class PlansOnReader(Protocol):
    """A SearchIndex kept apart from the database (the embedded one): it plans a query
    on the driver's own read transaction, the cheaper way in, and reads nothing of the
    database through it but the outbox head it must have applied."""

    async def prepare_read(
        self, r: Reader, query: And, scopes: tuple[QueryNode, ...] = ()
    ) -> PreparedSearch: ...


class IndexBusy(Exception):
    """Another process holds the index's writer (one writer per index)."""


class IndexBroken(Exception):
    """The index cannot be opened (missing, corrupt or of another schema)."""


class IndexWriter(Protocol):
    """The one writer of a DocumentIndex. Nothing is visible until ``commit``."""

    def upsert(self, assets: Sequence[IndexedAsset]) -> None:
        """Index these assets, replacing what was indexed for them before."""
        ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def delete_under(self, folder_id: str) -> None:
        """Drop every asset indexed below this folder, at any depth."""
        ...

    def commit(self) -> None: ...

    def close(self) -> None:
        """Release the writer's lock (uncommitted changes are dropped)."""
        ...


class DocumentIndex(SearchIndex, Protocol):
    """An index kept apart from the database: searches see its last reloaded commit."""

    async def prepare(
        self, conn: Connection | None, query: And, scopes: tuple[QueryNode, ...] = ()
    ) -> PreparedSearch:
        """Plan ``query``; the index reads nothing of the database (``conn`` may be
        None)."""
        ...

    def reload(self) -> None:
        """See the writer's latest commit."""
        ...

    def writer(self, *, bulk: bool = False) -> IndexWriter:
        """The index's one writer; IndexBusy when another process holds it. ``bulk``:
        for a build from scratch (more memory and threads), whose ``upsert`` adds each
        asset once (it replaces nothing)."""
        ...

    def count(self) -> int:
        """How many assets the index holds (as of the last reload)."""
        ...


class DocumentIndexes(Protocol):
    """Opens (or creates) a DocumentIndex in a directory; IndexBroken if it cannot."""

    def __call__(self, directory: Path, *, create: bool) -> DocumentIndex: ...


class DocumentText(Protocol):
    async def pdf_text(self, src: Path, limits: Limits) -> str:
        """The text of a PDF's first pages; raises processing.ports.MediaError."""
        ...
