"""Asset search: runs a parsed request against the search index and shapes the answer
(hits with projections, the total, facets and a cursor to the next page).

Cursors are opaque to clients and stable while assets come and go between pages:
- Sorted results (or unscored ones) page by position: the cursor holds the sort keys of
  the last hit, and the next page starts strictly after them, ties broken by id.
- Relevance-ordered results cannot page by score (an insert changes every bm25 score),
  so the first page freezes the ranked ids (the first ``SNAPSHOT_CAP``, like AEM's
  10,000-hit window) and the cursor walks that snapshot, skipping assets that no longer
  match.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import logging
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import delete, insert

from assetvault import cursors
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.reader import Reader
from assetvault.adapters.database.tables import search_snapshots
from assetvault.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from assetvault.metadata.service import MetadataService
from assetvault.processing.ports import Limits, MediaError
from assetvault.search.fields import ALL_TEXT_COLUMNS
from assetvault.search.ports import DocumentText, PlansOnReader, PreparedSearch, SearchIndex
from assetvault.search.query import (
    And,
    Match,
    Projection,
    QueryNode,
    SearchRequest,
    positive_matches,
    words,
)
from assetvault.settings import Settings
from assetvault.tree import repository as tree_repo

log = logging.getLogger("assetvault.search")

TOTAL_CAP = 10_000  # totalCount beyond this is reported as 10000, relation "gte"
SNAPSHOT_CAP = 10_000
SNAPSHOT_TTL = timedelta(hours=1)
# How long a cursor's next page waits for a ranking frozen after its first page.
FREEZE_WAIT_SECONDS = 5.0
DOCUMENT_WORDS = 32  # words of a PDF that make its query
DOCUMENT_PAGES = 50
DOCUMENT_CHARS = 200_000


# Plans a query (and its facet scopes) in a search's read transaction.
Preparer = Callable[[And, tuple[QueryNode, ...]], Awaitable[PreparedSearch]]


def fingerprint(request: SearchRequest) -> str:
    """What a cursor must match: the query and its order."""
    digest = hashlib.sha256(repr((request.query, request.sort)).encode())
    return digest.hexdigest()[:16]


def _tag(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"d"} and isinstance(value["d"], str):
            return datetime.fromisoformat(value["d"])
        if set(value) == {"n"} and isinstance(value["n"], str):
            return Decimal(value["n"])
        raise ValueError("unknown key type")
    if value is None or isinstance(value, str | int | float):
        return value
    raise ValueError("unknown key type")


def decode_cursor(cursor: str, expected: str) -> dict[str, Any]:
    try:
        state = cursors.unpack(cursor)
        if not isinstance(state, dict) or not isinstance(state.get("f"), str):
            raise ValueError("not a cursor")
        if "k" in state:
            if not isinstance(state["k"], list):
                raise ValueError("bad keys")
            state["k"] = [_untag(v) for v in state["k"]]
        elif not (
            isinstance(state.get("s"), str) and isinstance(state.get("o"), int) and state["o"] >= 0
        ):
            raise ValueError("bad snapshot position")
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the cursor is not valid: pass one from a previous response") from exc
    if state["f"] != expected:
        raise InvalidInput("the cursor belongs to a different query or sort; start again")
    return state


def project(envelope: dict[str, Any], projection: Projection) -> dict[str, Any]:
    """The envelope limited to ``includes`` (or without ``excludes``); fields name a group
    (``assetMetadata``) or a key in one (``assetMetadata.dc:title``). assetId stays.
    The envelope itself when nothing is cut; it is never changed."""
    if projection.includes:
        result: dict[str, Any] = {"assetId": envelope["assetId"]}
        for name in projection.includes:
            group, _, key = name.partition(".")
            if group not in envelope or group == "assetId":
                continue
            if not key:
                result[group] = copy.deepcopy(envelope[group])
            elif isinstance(envelope[group], dict) and key in envelope[group]:
                result.setdefault(group, {})[key] = copy.deepcopy(envelope[group][key])
        return result
    if not projection.excludes:
        return envelope  # each search reads its envelopes afresh: nothing shares them
    result = dict(envelope)
    for name in projection.excludes:
        group, _, key = name.partition(".")
        if group == "assetId" or group not in result:
            continue
        if not key:
            del result[group]
        elif isinstance(result[group], dict):
            result[group] = {k: v for k, v in result[group].items() if k != key}
    return result


def document_query(text: str) -> Match:
    """A full-text query from a document's text: its most frequent words, any of which
    may match; bm25 then ranks documents sharing more (and rarer) words first."""
    counts = Counter(w for w in words(text) if len(w) > 2 and not w.isdigit())
    if not counts:
        raise InvalidInput("the PDF holds no text to search with")
    top = tuple(sorted(w for w, _ in counts.most_common(DOCUMENT_WORDS)))
    return Match(top, ALL_TEXT_COLUMNS, any_word=True)


class Snapshot:
    """The ids of a frozen ranking as stored: a list of ids, or packed UUIDs (base64
    text of 16 bytes per id), read one slice at a time."""

    def __init__(self, ids: list[str] | None, packed: bytes | None) -> None:
        self._ids, self._packed = ids, packed

    @classmethod
    def of(cls, stored: Any) -> Snapshot | None:
        if isinstance(stored, list):
            return cls(stored, None)
        if isinstance(stored, str):
            return cls(None, base64.b64decode(stored))
        return None

    def __len__(self) -> int:
        return len(self._ids) if self._ids is not None else len(self._packed or b"") // 16

    def slice(self, start: int, end: int) -> list[str]:
        if self._ids is not None:
            return self._ids[start:end]
        raw = self._packed or b""
        end = min(end, len(self))
        return [str(uuid.UUID(bytes=raw[16 * k : 16 * k + 16])) for k in range(start, end)]


class SearchService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        index: SearchIndex,
        metadata: MetadataService,
        documents: DocumentText,
    ) -> None:
        self.settings = settings
        self.db = db
        self.index = index
        self._apart = index if isinstance(index, PlansOnReader) else None
        self.metadata = metadata
        self.documents = documents
        self._freezing: set[asyncio.Task[None]] = set()  # rankings being saved

    async def pdf_query(self, data: bytes) -> Match:
        """The text of a PDF, read by pdfium in the media sandbox (a malformed file ends
        a child process, not the server), as a full-text query."""
        if len(data) > self.settings.search_pdf_max_bytes:
            raise PayloadTooLarge(
                f"the PDF is larger than {self.settings.search_pdf_max_bytes} bytes"
            )
        if not data.startswith(b"%PDF-"):
            raise UnsupportedMediaType("enhanced search takes a PDF file (it starts with %PDF-)")
        limits = Limits(
            max_pixels=self.settings.processing_max_pixels,
            pdf_max_pages_text=DOCUMENT_PAGES,
            text_max_chars=DOCUMENT_CHARS,
            tool_timeout=self.settings.processing_timeout_seconds,
            memory_bytes=self.settings.processing_memory_limit_mb * 2**20,
        )
        with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
            file.write(data)
            file.flush()
            try:
                text = await self.documents.pdf_text(Path(file.name), limits)
            except MediaError as exc:
                raise InvalidInput(f"the PDF could not be read: {exc}") from exc
        return document_query(text)

    async def search(self, request: SearchRequest) -> dict[str, Any]:
        expected = fingerprint(request)
        state = decode_cursor(request.cursor, expected) if request.cursor else None
        scored = not request.sort and bool(positive_matches(request.query))
        if state is not None and ("s" in state) != scored:
            raise InvalidInput("the cursor belongs to a different query or sort; start again")
        saving: asyncio.Task[None] | None = None
        try:
            async with self._session() as (same, prepare):
                scopes = tuple(f.scope for f in request.facets if f.scope is not None)
                prepared = await prepare(request.query, scopes)
                next_state: dict[str, Any] | None = None
                after = state["k"] if state and not scored else None
                concurrent = prepared.concurrent
                if concurrent and scored and state is None:
                    # The page first; the ranking behind its cursor is frozen after the
                    # answer, from the same view of the index (see _freeze).
                    if not request.facets:
                        # The count comes with the ranking, from one pass over the hits.
                        counted, top = await prepared.counted_ranked(
                            request.limit + 1, TOTAL_CAP + 1
                        )
                        buckets = []
                    else:
                        (counted, buckets), top = await asyncio.gather(
                            prepared.summary(request.facets, TOTAL_CAP + 1),
                            prepared.ranked(request.limit + 1),
                        )
                    ids = top[: request.limit]
                    if len(top) > request.limit:
                        snapshot_id = str(uuid.uuid4())
                        next_state = {
                            "f": expected,
                            "s": snapshot_id,
                            "o": request.limit,
                            "t": time.time(),
                        }
                        self._freeze(prepared, snapshot_id, ids)
                    first = None
                elif concurrent and (not scored or state is None):
                    # The index runs the count and the page side by side (two threads).
                    work = (
                        prepared.ranked(SNAPSHOT_CAP)
                        if scored
                        else prepared.page(request.sort, after, request.limit + 1, large=False)
                    )
                    (counted, buckets), first = await asyncio.gather(
                        prepared.summary(request.facets, TOTAL_CAP + 1), work
                    )
                else:
                    counted, buckets = await prepared.summary(request.facets, TOTAL_CAP + 1)
                    first = None
                if not scored:
                    rows = first
                    if rows is None:
                        rows = await prepared.page(
                            request.sort, after, request.limit + 1, large=counted > TOTAL_CAP
                        )
                    ids = [node_id for node_id, _ in rows[: request.limit]]
                    if len(rows) > request.limit:
                        last_keys = rows[request.limit - 1][1]
                        next_state = {"f": expected, "k": [_tag(v) for v in last_keys]}
                elif state is None and concurrent:
                    pass  # the page and its cursor are made above
                elif state is None:
                    ranked = first if first is not None else await prepared.ranked(SNAPSHOT_CAP)
                    ids = ranked[: request.limit]
                    if len(ranked) > request.limit:
                        next_state = {"f": expected, "s": str(uuid.uuid4()), "o": request.limit}
                        # Saved (on a connection of its own) while the page is read.
                        saving = asyncio.create_task(self._save_snapshot(next_state["s"], ranked))
                else:
                    ids, offset = await self._from_snapshot(same, prepared, request.limit, state)
                    if offset is not None:
                        next_state = {"f": expected, "s": state["s"], "o": offset}
                found = await tree_repo.by_ids(same, ids)
                envelopes = await self.metadata.envelopes(
                    same, [found[i] for i in ids if i in found]
                )
        except BaseException:
            if saving is not None:
                saving.cancel()
            raise
        if saving is not None:
            await saving
        body: dict[str, Any] = {
            "hits": {"results": [project(e, request.projection) for e in envelopes]},
            "search_metadata": {
                "totalCount": {
                    "total": min(counted, TOTAL_CAP),
                    "relation": "gte" if counted > TOTAL_CAP else "eq",
                }
            },
        }
        if next_state is not None:
            body["cursor"] = cursors.pack(next_state)
        if request.facets:
            body["facets"] = [
                {
                    "id": facet.id,
                    "type": "CATEGORY",
                    "values": [{"value": value, "count": count} for value, count in counts],
                }
                for facet, counts in zip(request.facets, buckets, strict=True)
            ]
        return body

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[tuple[Reader, Preparer]]:
        """One read transaction for a search: the reader its hits are read with, and how
        its query is planned. An index kept apart from the database plans on the
        driver's own reader (no SQLAlchemy connection: the cheaper way in); one in the
        database plans on the transaction's connection."""
        apart = self._apart
        if apart is not None:
            async with self.db.reader() as r:

                async def on_reader(query: And, scopes: tuple[QueryNode, ...]) -> PreparedSearch:
                    return await apart.prepare_read(r, query, scopes)

                yield r, on_reader
            return
        async with self.db.read() as conn:

            async def on_connection(query: And, scopes: tuple[QueryNode, ...]) -> PreparedSearch:
                return await self.index.prepare(conn, query, scopes)

            # The same transaction, read as the repositories do.
            yield self.db.reader_of(conn), on_connection

    async def _from_snapshot(
        self, r: Reader, prepared: PreparedSearch, limit: int, state: dict[str, Any]
    ) -> tuple[list[str], int | None]:
        """The next page of a frozen ranking: its ids still matching, from the cursor's
        offset; and the offset after them if any further id still matches."""
        # As text on either database (a driver may decode JSON itself, or not).
        query = "SELECT CAST(node_ids AS TEXT) FROM search_snapshots WHERE id = ?"
        row = await r.fetch_one(query, (state["s"],))
        made = state.get("t")
        if row is None and isinstance(made, int | float):
            # A ranking frozen after its first page was answered may still be on its way
            # (from this process or another): wait a little, in fresh transactions.
            deadline = made + FREEZE_WAIT_SECONDS
            while row is None and time.time() < deadline:
                await asyncio.sleep(0.01)
                async with self.db.reader() as fresh:
                    row = await fresh.fetch_one(query, (state["s"],))
        ranked = orjson.loads(row[0]) if row is not None else None
        ids = Snapshot.of(ranked)
        if ids is None:
            raise InvalidInput("the cursor has expired; run the search again")
        position = state["o"]
        picked: list[str] = []
        while position < len(ids) and len(picked) <= limit:
            chunk = ids.slice(position, position + 2 * limit)
            alive = await prepared.among(chunk)
            for node_id in chunk:
                position += 1
                if node_id in alive:
                    picked.append(node_id)
                    if len(picked) > limit:
                        position -= 1  # the extra hit opens the next page
                        break
        if len(picked) > limit:
            return picked[:limit], position
        return picked, None

    def _freeze(self, prepared: PreparedSearch, snapshot_id: str, page: list[str]) -> None:
        """Save, after the answer, the ranking a relevance cursor walks: the first page as
        it was served, then the rest of the first SNAPSHOT_CAP in rank order (so ties
        at the page's edge can neither repeat nor go missing)."""

        async def freeze() -> None:
            try:
                ranked = await prepared.ranked_uuids(SNAPSHOT_CAP)
                first = b"".join(uuid.UUID(i).bytes for i in page)
                if ranked.startswith(first):  # the usual case: the page tops the ranking
                    packed = ranked
                else:
                    served = {first[i : i + 16] for i in range(0, len(first), 16)}
                    rest = (ranked[i : i + 16] for i in range(0, len(ranked), 16))
                    packed = first + b"".join(r for r in rest if r not in served)
                await self._save_snapshot(snapshot_id, base64.b64encode(packed).decode())
            except Exception:
                log.exception("freezing a relevance ranking failed")

        task = asyncio.create_task(freeze())
        self._freezing.add(task)
        task.add_done_callback(self._freezing.discard)

    async def forget_expired(self) -> int:
        """Remove the snapshots whose cursors have expired."""
        async with self.db.write() as conn:
            result = await conn.execute(
                delete(search_snapshots).where(search_snapshots.c.expires_at < datetime.now(UTC))
            )
        return int(result.rowcount)

    async def _save_snapshot(self, snapshot_id: str, ranked: list[str] | str) -> None:
        """``ranked``: the ids, or (from a ranking frozen after its page) their UUIDs'
        bytes one after another, in base64 (a tenth of the work of 10,000 texts)."""
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            await conn.execute(
                insert(search_snapshots).values(
                    id=snapshot_id, node_ids=ranked, expires_at=now + SNAPSHOT_TTL
                )
            )
