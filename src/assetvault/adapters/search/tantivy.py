"""The embedded search index: Tantivy (PyPI ``tantivy``) in a directory under the data
directory, written by the one search indexer and read by every API process.

Schema (how each query maps onto it):
- Full text: ``t_name``, ``t_title``, ``t_description``, ``t_subject``, ``t_body``, each
  the words of the domain's own splitter (search/query.py ``words``) joined by spaces and
  read by a whitespace tokenizer, so the index and the query split text alike. bm25 per
  field, weighted as the domain says (title 10, name 5, subject 5, description 2, body 1).
- Repository fields: raw text terms (``name``, ``path``, ``mime``, ...), i64 fast fields
  (``size``; ``created``/``modified`` in microseconds since the epoch, so a range on a
  microsecond compares exactly), ``ancestors`` (every folder id above the asset).
- ``assetMetadata``: one multi-valued raw text field, ``meta``, of typed terms per key and
  element (``s``tring, ``n``umber, ``b``oolean, ``p``resent), so a term query on any key
  compares type and value; a range enumerates the key's terms of its type from the term
  dictionary and keeps those in range. Chosen over a JSON field: Tantivy's JSON terms
  coerce numbers and strings into each other, which the query language forbids.
- Ids: ``id`` (raw text, for deletes and id sets) and ``idhi``/``idlo``, the uuid's two
  halves as i64 fast fields: ``idhi`` orders hits by id and pages after a cursor with a
  range; both give an id back without loading a stored document.
- ``src``: the stored values a sort on any field reads (generic sorts, ties).

Facets are ``terms`` aggregations on ``mime`` and ``status`` (exact: every hit counted).
Tantivy keeps one writer per directory (a lock file); the Python binding panics on
``limit=0`` (a BaseException), so every limit here is at least 1.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import orjson
import tantivy

from assetvault.adapters.database.connection import Connection
from assetvault.errors import InvalidInput
from assetvault.search.fields import NODE_URN_PREFIX, Field
from assetvault.search.models import IndexedAsset
from assetvault.search.ports import IndexBroken, IndexBusy
from assetvault.search.query import (
    And,
    Exists,
    FacetRequest,
    Match,
    Not,
    Or,
    QueryNode,
    Range,
    SortKey,
    Term,
    parse_date,
    positive_matches,
    words,
)

_P = ParamSpec("_P")
_R = TypeVar("_R")

SCHEMA_VERSION = "4"
WEIGHTS = {"name": 5.0, "title": 10.0, "description": 2.0, "subject": 5.0, "body": 1.0}
TEXT_FIELDS = {column: f"t_{column}" for column in WEIGHTS}
# Repository columns (search/fields.py) -> raw text fields of the index.
STRING_FIELDS = {
    "name": "name",
    "path": "path",
    "mime_type": "mime",
    "created_by": "created_by",
    "modified_by": "modified_by",
    "asset_state": "state",
    "sha1": "sha1",
}
URN_FIELDS = {"id": "id", "parent_id": "parent"}
NUMBER_FIELDS = {"size": "size"}
DATE_FIELDS = {"created_at": "created", "modified_at": "modified"}
# Columns an asset always has a value in.
NOT_NULL = {"id", "parent_id", "name", "path", "created_at", "modified_at"}
NOT_NULL |= {"created_by", "modified_by"}
FAST_TEXT = {"name", "mime", "status", "title_s"}
FACET_FIELDS = {
    "repositoryMetadata.dc:format": "mime",
    "assetMetadata.dam:assetStatus": "status",
}
TEXT_KEYS = {"dc:title": "title", "dc:description": "description", "dc:subject": "subject"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
WINDOWS = 3  # id windows an unsorted page tries before ordering the rest whole
KEY_WINDOWS = 4  # windows of a sort key's range a sorted page tries (each ~1.5 ms empty)
KEY_GROWTH = 8  # each window this many times the one before (values may come in clusters)
WINDOW_CAP = 20_000  # assets a window may hold
BOUNDS_SECONDS = 30.0  # how long an index reuses its estimate of a sort key's value range
AGG_SIZE = 65_000  # buckets per facet: more than any real number of formats or statuses
WRITER_HEAP = 64_000_000
RENEW_AFTER_RELOADS = 1000  # TantivyIndex.reload
BULK_HEAP = 512_000_000


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float on the way)."""
    return (moment - EPOCH) // MICRO


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def _id_halves(node_id: str) -> tuple[int, int]:
    """The uuid's two halves as signed 64-bit ints, ordered as the id's text is (the
    text of a uuid orders as its hex digits do)."""
    value = uuid.UUID(node_id).int
    return (value >> 64) + I64_MIN, (value & (2**64 - 1)) + I64_MIN


def _id_of(hi: int, lo: int) -> str:
    # uuid.UUID(int=...) is several times slower, and runs for every ranked hit.
    x, y = hi - I64_MIN, lo - I64_MIN
    return "%08x-%04x-%04x-%04x-%012x" % (  # noqa: UP031 - the fastest spelling here
        x >> 32,
        (x >> 16) & 0xFFFF,
        x & 0xFFFF,
        y >> 48,
        y & 0xFFFFFFFFFFFF,
    )


def _key_prefix(kind: str, key: str) -> str:
    # The key's length keeps "a" + "bc" apart from "ab" + "c".
    return f"{kind}{len(key)}:{key}"


def canonical_number(value: int | float) -> str:
    """One text per numeric value, so 2 and 2.0 are one term (they are equal)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


FACET_BITS = 31
FACET_MASK = 2**FACET_BITS - 1


def _facet_hash(value: str | None) -> int:
    """A value's part of the facet code: 0 when there is none, else 31 bits of its
    CRC (the codes read back through the term dictionary, see FacetCodes)."""
    if value is None:
        return 0
    return (zlib.crc32(value.encode()) & FACET_MASK) or 1


def facet_code(mime: str | None, status: str | None) -> int:
    """Format and status in one integer, so one terms aggregation counts both facets
    (and the hits): a pass over one column instead of two text columns."""
    return _facet_hash(mime) << FACET_BITS | _facet_hash(status)


@dataclass(frozen=True)
class FacetCodes:
    """What each part of the facet code stands for, read from the term dictionaries of
    ``mime`` and ``status`` (every value any document holds)."""

    mime: dict[int, str]
    status: dict[int, str]

    @classmethod
    def read(cls, searcher: tantivy.Searcher) -> FacetCodes | None:
        """None if two values share a code: facets then count the text columns."""
        maps: list[dict[int, str]] = []
        for field in ("mime", "status"):
            found: dict[int, str] = {}
            for term, _ in searcher.terms_with_prefix(field, ""):
                code = _facet_hash(term)
                if found.setdefault(code, term) != term:
                    return None
                found[code] = term
            maps.append(found)
        return cls(maps[0], maps[1])


def _parse_number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def meta_terms(metadata: dict[str, Any]) -> list[str]:
    """The typed terms of a metadata view: per key, one per element of its value (a
    scalar is its own only element) and one saying the key holds something."""
    terms: list[str] = []
    for key, value in metadata.items():
        elements = value if isinstance(value, list) else [value]
        present = False
        for e in elements:
            if e is None:
                continue
            present = True
            if isinstance(e, bool):
                terms.append(_key_prefix("b", key) + ("1" if e else "0"))
            elif isinstance(e, int | float):
                terms.append(_key_prefix("n", key) + canonical_number(e))
            elif isinstance(e, str):
                terms.append(_key_prefix("s", key) + e)
        if present:
            terms.append(_key_prefix("p", key))
    return terms


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text_value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    # Fast (columnar) only where a search orders or aggregates by the text: each costs
    # the indexer a column. "has" says which nullable fields an asset has a value in.
    for name in ("id", *STRING_FIELDS.values(), "parent", "status", "title_s", "has"):
        fast = name in FAST_TEXT
        sb.add_text_field(name, fast=fast, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("ancestors", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("meta", tokenizer_name="raw", index_option="basic")
    for name in TEXT_FIELDS.values():
        sb.add_text_field(name, tokenizer_name="words", index_option="freq")
    for name in ("idhi", "idlo", "size", "created", "modified", "name_k", "title_k"):
        sb.add_integer_field(name, indexed=True, fast=True)
    sb.add_integer_field("facet", fast=True)
    # Stored only (indexing a JSON text as one term made most of the index).
    sb.add_bytes_field("src", stored=True)
    return sb.build()


def _document(asset: IndexedAsset) -> tantivy.Document:
    """The asset's document, built as one dict and handed to the binding in one call
    (a call per value costs the indexer more than the rest of the work)."""
    hi, lo = _id_halves(asset.id)
    created, modified = micros(asset.created_at), micros(asset.modified_at)
    values: dict[str, list[Any]] = {
        "id": [asset.id],
        "idhi": [hi],
        "idlo": [lo],
        "created": [created],
        "modified": [modified],
        "name_k": [prefix_key(asset.name)],
    }
    has: list[str] = []
    for column, field in STRING_FIELDS.items():
        value = getattr(asset, column)
        if value is not None:
            values[field] = [value]
            if column not in NOT_NULL:
                has.append(field)
    if has:
        values["has"] = has
    if asset.parent_id is not None:
        values["parent"] = [asset.parent_id]
    if asset.ancestor_ids:
        values["ancestors"] = list(asset.ancestor_ids)
    if asset.size is not None:
        values["size"] = [asset.size]
    metadata = asset.metadata
    title = metadata.get("dc:title")
    if title is not None and not isinstance(title, bool | int | float):
        # The text a sort on dc:title orders by (an array by its JSON text).
        text = title if isinstance(title, str) else _json_text(title)
        values["title_s"] = [text]
        values["title_k"] = [prefix_key(text)]
    status = metadata.get("dam:assetStatus")
    if isinstance(status, str):
        values["status"] = [status]
        values["facet"] = [facet_code(asset.mime_type, status)]
    else:
        values["facet"] = [facet_code(asset.mime_type, None)]
    terms = meta_terms(metadata)
    if terms:
        values["meta"] = terms
    texts = {
        "name": asset.name,
        "body": asset.text or "",
        **{column: _text_value(metadata.get(key)) for key, column in TEXT_KEYS.items()},
    }
    for column, text in texts.items():
        folded = " ".join(words(text))
        if folded:
            values[TEXT_FIELDS[column]] = [folded]
    src = {
        "id": asset.id,
        "name": asset.name,
        "path": asset.path,
        "parent_id": asset.parent_id,
        "mime_type": asset.mime_type,
        "size": asset.size,
        "created_at": created,
        "modified_at": modified,
        "created_by": asset.created_by,
        "modified_by": asset.modified_by,
        "asset_state": asset.asset_state,
        "sha1": asset.sha1,
        "meta": metadata,
    }
    values["src"] = [orjson.dumps(src)]
    return tantivy.Document.from_dict(values)


class TantivyWriter:
    def __init__(self, index: tantivy.Index, *, bulk: bool = False) -> None:
        try:
            # A rebuild indexes on two threads with a larger budget; the indexer's small
            # batches need neither.
            self._writer = index.writer(BULK_HEAP, 2) if bulk else index.writer(WRITER_HEAP, 1)
        except ValueError as exc:  # the lock file is held
            raise IndexBusy(str(exc)) from exc
        # A build from scratch adds each asset once: nothing to replace.
        self._fresh = bulk

    def upsert(self, assets: Sequence[IndexedAsset]) -> None:
        add = self._writer.add_document
        if self._fresh:
            for asset in assets:
                add(_document(asset))
            return
        for asset in assets:
            self._writer.delete_documents_by_term("id", asset.id)
            add(_document(asset))

    def delete(self, ids: Sequence[str]) -> None:
        for node_id in ids:
            self._writer.delete_documents_by_term("id", node_id)

    def delete_under(self, folder_id: str) -> None:
        self._writer.delete_documents_by_term("ancestors", folder_id)

    def commit(self) -> None:
        self._writer.commit()

    def close(self) -> None:
        self._writer.rollback()
        self._writer.wait_merging_threads()  # consumes the writer: releases the lock


class TantivyIndex:
    """One index directory. Searches run on a thread (the binding releases the GIL), on
    the searcher of the last ``reload``."""

    def __init__(self, directory: Path, *, create: bool) -> None:
        self.directory = directory
        marker = directory / "assetvault-index.json"
        try:
            if create:
                directory.mkdir(parents=True, exist_ok=True)
            elif not marker.exists():
                raise IndexBroken(f"no search index in {directory}")
            elif orjson.loads(marker.read_bytes()).get("schema") != SCHEMA_VERSION:
                raise IndexBroken(f"the search index in {directory} has another schema")
            self.schema = _schema()
            self.index = self._open(create=create)
            self.reloads = 0  # since self.index was opened
            if create:
                marker.write_bytes(orjson.dumps({"schema": SCHEMA_VERSION}))
            self.searcher = self.index.searcher()
            self.codes = FacetCodes.read(self.searcher)
            self.bounds = KeyBounds()
        except (ValueError, OSError, orjson.JSONDecodeError) as exc:
            raise IndexBroken(f"the search index in {directory} cannot be opened: {exc}") from exc

    def _open(self, *, create: bool) -> tantivy.Index:
        index = tantivy.Index(self.schema, path=str(self.directory), reuse=not create)
        index.register_tokenizer(
            "words", tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
        )
        index.config_reader("Manual")
        return index

    def reload(self) -> None:
        self.reloads += 1
        if self.reloads >= RENEW_AFTER_RELOADS:
            # Tantivy's directory keeps a path and a pointer for every file it ever opened
            # while its Index object lives, and every reload after a commit opens new
            # segment files: a fresh Index object starts with none. Searches still
            # running keep the old one until they end.
            self.index, self.reloads = self._open(create=False), 0
        else:
            self.index.reload()
        searcher = self.index.searcher()
        self.searcher, self.codes = searcher, FacetCodes.read(searcher)

    def writer(self, *, bulk: bool = False) -> TantivyWriter:
        return TantivyWriter(self.index, bulk=bulk)

    def count(self) -> int:
        return int(self.searcher.num_docs)

    async def prepare(
        self, conn: Connection | None, query: And, scopes: tuple[QueryNode, ...] = ()
    ) -> PreparedTantivy:
        prepared = PreparedTantivy(self.schema, self.searcher, self.codes, query, self.bounds)
        await asyncio.to_thread(prepared._q)  # compiled once, before any step runs
        return prepared


def open_tantivy(directory: Path, *, create: bool) -> TantivyIndex:
    return TantivyIndex(directory, create=create)


# -- queries --------------------------------------------------------------------------

Q = tantivy.Query
Occur = tantivy.Occur


def _all() -> tantivy.Query:
    return Q.all_query()


def _none() -> tantivy.Query:
    return Q.empty_query()


def _and(queries: list[tantivy.Query]) -> tantivy.Query:
    return queries[0] if len(queries) == 1 else Q.boolean_query([(Occur.Must, q) for q in queries])


def _or(queries: list[tantivy.Query]) -> tantivy.Query:
    return (
        queries[0] if len(queries) == 1 else Q.boolean_query([(Occur.Should, q) for q in queries])
    )


def _not(query: tantivy.Query) -> tantivy.Query:
    return Q.boolean_query([(Occur.Must, _all()), (Occur.MustNot, query)])


def prefix_key(text: str) -> int:
    """A coarse integer that orders as the text does (its first 8 UTF-8 bytes; UTF-8
    orders as code points do); equal keys only say the texts share those bytes."""
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "big") + I64_MIN


@dataclass(frozen=True)
class FastKey:
    """How a sort key is read from the index: the i64 fast ``field`` to range on (its
    values coarse(value)), and the text fast field to order by (None: order by
    ``field``, which is then exact)."""

    field: str
    text: str | None
    coarse: Callable[[Any], int]
    shown: Callable[[Any], Any] = lambda value: value  # indexed value -> sort key value

    def equal(self, prepared: PreparedTantivy, value: Any, *, stored: bool) -> tantivy.Query:
        """Hits whose key equals ``value``: a sort key's value, or (``stored``) the value
        the index orders by, as a search's hits carry it."""
        if self.text is not None:
            return Q.term_query(prepared.schema, self.text, value, index_option="basic")
        exact = value if stored else self.coarse(value)
        return prepared._int_equal(self.field, exact)


@dataclass(frozen=True)
class Segment:
    """Consecutive hits of one (missing, kind) class of a first sort key's values."""

    missing: int
    kind: int
    query: tantivy.Query
    fast: FastKey | None


def _count(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    result = searcher.search(query, 1, count=True)
    return int(result.count)  # type: ignore[attr-defined]  # missing from the stubs


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _urn_ids(values: tuple[Any, ...]) -> list[str]:
    prefix = NODE_URN_PREFIX
    return [v[len(prefix) :] for v in values if isinstance(v, str) and v.startswith(prefix)]


def _int_bounds(
    bounds: tuple[tuple[str, Any], ...], scale: Callable[[Any], int | float]
) -> tuple[int, int] | None:
    """Inclusive integer bounds of a range over an integer field (None: empty)."""
    lo, hi = I64_MIN, I64_MAX
    for op, value in bounds:
        v = scale(value)
        if op == "gt":
            lo = max(lo, math.floor(v) + 1)
        elif op == "gte":
            lo = max(lo, math.ceil(v))
        elif op == "lt":
            hi = min(hi, math.ceil(v) - 1)
        else:
            hi = min(hi, math.floor(v))
    return (lo, hi) if lo <= hi else None


def _in_bounds(value: Any, bounds: tuple[tuple[str, Any], ...]) -> bool:
    for op, bound in bounds:
        if op == "gt" and not value > bound:
            return False
        if op == "gte" and not value >= bound:
            return False
        if op == "lt" and not value < bound:
            return False
        if op == "lte" and not value <= bound:
            return False
    return True


class Compiler:
    """Query nodes to Tantivy queries; ranges over text read the term dictionary."""

    def __init__(self, schema: tantivy.Schema, searcher: tantivy.Searcher) -> None:
        self.schema = schema
        self.searcher = searcher

    def node(self, node: QueryNode) -> tantivy.Query:
        if isinstance(node, And):
            return _and([self.node(c) for c in node.children])
        if isinstance(node, Or):
            return _or([self.node(c) for c in node.children])
        if isinstance(node, Not):
            return Q.boolean_query(
                [(Occur.Must, _all()), *((Occur.MustNot, self.node(c)) for c in node.children)]
            )
        if isinstance(node, Match):
            return self.match(node)
        if node.field.key is not None:
            return self.metadata(node)
        if isinstance(node, Term):
            return self.column_term(node)
        if isinstance(node, Range):
            return self.column_range(node)
        return self.column_exists(node.field)

    def match(self, node: Match) -> tantivy.Query:
        if node.match_all:
            return _all()
        if not node.tokens:
            return _none()
        per_word = []
        for word in node.tokens:
            alternatives = []
            for column in node.columns:
                field = TEXT_FIELDS[column]
                if node.prefix:
                    # Words hold letters and digits only: nothing to escape.
                    q = Q.regex_query(self.schema, field, word + ".*")
                else:
                    q = Q.term_query(self.schema, field, word, index_option="freq")
                alternatives.append(Q.boost_query(q, WEIGHTS[column]))
            per_word.append(_or(alternatives))
        return _or(per_word) if node.any_word else _and(per_word)

    def _text_terms(self, field: str, values: list[str]) -> tantivy.Query:
        return Q.term_set_query(self.schema, field, values) if values else _none()

    def _int_terms(self, field: str, values: list[int]) -> tantivy.Query:
        # Terms of the inverted index: an equal range would read the whole column.
        kept = sorted({v for v in values if I64_MIN <= v <= I64_MAX})
        return Q.term_set_query(self.schema, field, kept) if kept else _none()

    def column_term(self, node: Term) -> tantivy.Query:
        field = node.field
        column = field.column or ""
        if field.type == "ancestors":
            return self._text_terms("ancestors", _urn_ids(node.values))
        if field.type == "urn":
            return self._text_terms(URN_FIELDS[column], _urn_ids(node.values))
        if field.type == "number":
            ints = [int(v) for v in node.values if _is_number(v) and float(v).is_integer()]
            return self._int_terms(NUMBER_FIELDS[column], ints)
        if field.type == "date":
            moments = [micros(parse_date(v, f"term {field.name}")) for v in node.values]
            return self._int_terms(DATE_FIELDS[column], moments)
        strings = [v for v in node.values if isinstance(v, str)]
        return self._text_terms(STRING_FIELDS[column], strings)

    def column_range(self, node: Range) -> tantivy.Query:
        field = node.field
        column = field.column or ""
        if field.type in ("number", "date"):
            name = NUMBER_FIELDS.get(column) or DATE_FIELDS[column]
            scale: Callable[[Any], int | float] = micros if field.type == "date" else (lambda v: v)
            found = _int_bounds(node.bounds, scale)
            if found is None:
                return _none()
            lo, hi = found
            return Q.range_query(self.schema, name, tantivy.FieldType.Integer, lo, hi)
        # Strings compare by code point, as the term dictionary is ordered.
        name = STRING_FIELDS[column]
        values = [
            t for t, _ in self.searcher.terms_with_prefix(name, "") if _in_bounds(t, node.bounds)
        ]
        return self._text_terms(name, values)

    def column_exists(self, field: Field) -> tantivy.Query:
        column = field.column or ""
        if field.type == "ancestors" or column in NOT_NULL:
            return _all()
        if column in NUMBER_FIELDS:
            return Q.exists_query(NUMBER_FIELDS[column])
        return self._text_terms("has", [STRING_FIELDS[column]])

    def metadata(self, node: Term | Range | Exists) -> tantivy.Query:
        key = node.field.key
        assert key is not None
        if isinstance(node, Exists):
            return self._text_terms("meta", [_key_prefix("p", key)])
        if isinstance(node, Term):
            terms = []
            for v in node.values:
                if isinstance(v, bool):
                    terms.append(_key_prefix("b", key) + ("1" if v else "0"))
                elif isinstance(v, int | float):
                    terms.append(_key_prefix("n", key) + canonical_number(v))
                else:
                    terms.append(_key_prefix("s", key) + v)
            return self._text_terms("meta", terms)
        numeric = not isinstance(node.bounds[0][1], str)
        prefix = _key_prefix("n" if numeric else "s", key)
        picked = []
        for term, _ in self.searcher.terms_with_prefix("meta", prefix):
            raw = term[len(prefix) :]
            value: Any = _parse_number(raw) if numeric else raw
            if _in_bounds(value, node.bounds):
                picked.append(term)
        return self._text_terms("meta", picked)


# -- sorting --------------------------------------------------------------------------


def _sort_parts(src: dict[str, Any], key: SortKey) -> list[Any]:
    """[missing, kind, value] of one sort key: a missing value sorts last in both
    directions; numbers (booleans as 0 and 1) before strings ascending, after them
    descending, as SQLite orders them."""
    field = key.field
    if field.key is not None:
        value = src["meta"].get(field.key)
        if value is None:
            return [1, 0, None]
        if isinstance(value, bool):
            return [0, 0, int(value)]
        if _is_number(value):
            return [0, 0, value]
        if isinstance(value, str):
            return [0, 1, value]
        return [0, 1, _json_text(value)]
    column = field.column or ""
    value = src.get(column)
    if value is None:
        return [1, 0, None]
    if column in DATE_FIELDS:
        return [0, 0, from_micros(value)]
    return [0, 0 if _is_number(value) else 1, value]


def sort_keys(src: dict[str, Any], sort: tuple[SortKey, ...]) -> list[Any]:
    keys: list[Any] = []
    for key in sort:
        keys += _sort_parts(src, key)
    keys.append(src["id"])
    return keys


def _compare(a: list[Any], b: list[Any], sort: tuple[SortKey, ...]) -> int:
    for i, key in enumerate(sort):
        ma, ka, va = a[3 * i : 3 * i + 3]
        mb, kb, vb = b[3 * i : 3 * i + 3]
        if ma != mb:
            return -1 if ma < mb else 1
        if ma:  # both missing
            continue
        sign = -1 if key.descending else 1
        if ka != kb:  # the kinds' order turns with the direction, as SQLite's does
            return sign * (-1 if ka < kb else 1)
        if va != vb:
            return sign * (-1 if va < vb else 1)
    ia, ib = a[-1], b[-1]
    return 0 if ia == ib else (-1 if ia < ib else 1)


class KeyBounds:
    """Estimates of the value range of integer sort keys over an index, where a sorted
    page starts its windows (PreparedTantivy._top_by). Only an estimate: each costs a
    pass over the column, so it is reused for BOUNDS_SECONDS across reloads; _top_by
    probes past its near end and orders past its far end openly, so a stale one costs
    time, never a hit."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, tuple[int, int] | None]] = {}
        self._lock = threading.Lock()

    def of(self, searcher: tantivy.Searcher, field: str) -> tuple[int, int] | None:
        now = time.monotonic()
        with self._lock:
            known = self._known.get(field)
        if known is not None and now - known[0] < BOUNDS_SECONDS:
            return known[1]
        found = searcher.aggregate(
            Q.all_query(), {"lo": {"min": {"field": field}}, "hi": {"max": {"field": field}}}
        )
        lo, hi = found["lo"].get("value"), found["hi"].get("value")
        bounds = None if lo is None or hi is None else (int(lo), int(hi))
        with self._lock:
            self._known[field] = (now, bounds)
        return bounds


class PreparedTantivy:
    """One query on one searcher (a consistent view for all the steps of a search)."""

    concurrent = True  # searches release the GIL: the count and the page overlap

    def __init__(
        self,
        schema: tantivy.Schema,
        searcher: tantivy.Searcher,
        codes: FacetCodes | None,
        query: And,
        bounds: KeyBounds | None = None,
    ) -> None:
        self.schema = schema
        self.searcher = searcher
        self.codes = codes
        self.bounds = bounds or KeyBounds()
        self.query_node = query
        self.compiler = Compiler(schema, searcher)
        self._query: tantivy.Query | None = None
        # Words to match: hits are few as a rule (see _top_by).
        self._selective = bool(positive_matches(query))

    def _q(self) -> tantivy.Query:
        if self._query is None:
            self._query = self.compiler.node(self.query_node)
        return self._query

    async def _run(self, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- summary ----------------------------------------------------------------------

    async def summary(
        self, facets: tuple[FacetRequest, ...], cap: int
    ) -> tuple[int, list[list[tuple[Any, int]]]]:
        return await self._run(self._summary, facets)

    def _summary(self, facets: tuple[FacetRequest, ...]) -> tuple[int, list[list[tuple[Any, int]]]]:
        query = self._q()
        if not facets:
            return _count(self.searcher, query), []
        plain = [f for f in facets if f.scope is None]
        combined = self._combined(query) if plain else None
        total: int | None = None
        result: dict[str, Any] = {}
        if combined is not None:
            total = combined[0]
        else:
            aggs = {
                f"f{i}": {"terms": {"field": FACET_FIELDS[f.field], "size": AGG_SIZE}}
                for i, f in enumerate(facets)
                if f.scope is None
            }
            result = self.searcher.aggregate(
                query, {**aggs, "total": {"value_count": {"field": "idhi"}}}
            )
            total = int(result["total"]["value"])
        buckets: list[list[tuple[Any, int]]] = []
        for i, facet in enumerate(facets):
            field = FACET_FIELDS[facet.field]
            if facet.scope is None and combined is not None:
                found = list(combined[1][field].items())
            elif facet.scope is None:
                found = [(b["key"], int(b["doc_count"])) for b in result[f"f{i}"]["buckets"]]
            else:
                scoped = _and([query, self.compiler.node(facet.scope)])
                narrowed = self._combined(scoped)
                if narrowed is not None:
                    found = list(narrowed[1][field].items())
                else:
                    agg = {"f": {"terms": {"field": field, "size": AGG_SIZE}}}
                    found = [
                        (b["key"], int(b["doc_count"]))
                        for b in self.searcher.aggregate(scoped, agg)["f"]["buckets"]
                    ]
            counts = [(k, n) for k, n in found if facet.values is None or k in facet.values]
            counts.sort(key=lambda b: (-b[1], str(b[0])))
            buckets.append(counts[: facet.size])
        if total is None:
            total = _count(self.searcher, query)
        return total, buckets

    def _combined(self, query: tantivy.Query) -> tuple[int, dict[str, dict[str, int]]] | None:
        """The hits' count and both facets' counts from one terms aggregation on the
        combined facet code; None when the codes cannot tell two values apart."""
        codes = self.codes
        if codes is None:
            return None
        agg = {"c": {"terms": {"field": "facet", "size": AGG_SIZE}}}
        found = self.searcher.aggregate(query, agg)["c"]
        if found.get("sum_other_doc_count"):
            return None
        total = 0
        mimes: dict[str, int] = {}
        statuses: dict[str, int] = {}
        for bucket in found["buckets"]:
            code, n = int(bucket["key"]), int(bucket["doc_count"])
            total += n
            mime, status = code >> FACET_BITS, code & FACET_MASK
            try:
                if mime:
                    value = codes.mime[mime]
                    mimes[value] = mimes.get(value, 0) + n
                if status:
                    value = codes.status[status]
                    statuses[value] = statuses.get(value, 0) + n
            except KeyError:  # a value newer than the codes read at the last reload
                return None
        return total, {"mime": mimes, "status": statuses}

    # -- pages ------------------------------------------------------------------------

    def _ids(self, addresses: list[tantivy.DocAddress]) -> list[str]:
        if not addresses:
            return []
        his = self.searcher.fast_field_values("idhi", addresses)
        los = self.searcher.fast_field_values("idlo", addresses)
        return [_id_of(int(hi or 0), int(lo or 0)) for hi, lo in zip(his, los, strict=True)]

    def _all_hits(self, query: tantivy.Query) -> list[tantivy.DocAddress]:
        count = _count(self.searcher, query)
        if count == 0:
            return []
        return [addr for _, addr in self.searcher.search(query, count, count=False).hits]

    def _sources(self, addresses: list[tantivy.DocAddress]) -> list[dict[str, Any]]:
        return [orjson.loads(bytes(self.searcher.doc(a)["src"][0])) for a in addresses]

    async def page(
        self, sort: tuple[SortKey, ...], after: list[Any] | None, limit: int, *, large: bool
    ) -> list[tuple[str, list[Any]]]:
        return await self._run(self._page, sort, after, limit)

    def _page(
        self, sort: tuple[SortKey, ...], after: list[Any] | None, limit: int
    ) -> list[tuple[str, list[Any]]]:
        if after is not None and len(after) != 3 * len(sort) + 1:
            raise InvalidInput("the cursor does not belong to this query")
        if not sort:
            return self._by_id(after, limit)
        found = self._by_segments(sort, after, limit)
        if found is not None:
            return found
        # No fast field for this key: every hit's keys, from its stored values.
        return self._sorted(self._all_hits(self._q()), sort, after, limit)

    def _sorted(
        self,
        addresses: list[tantivy.DocAddress],
        sort: tuple[SortKey, ...],
        after: list[Any] | None,
        limit: int,
    ) -> list[tuple[str, list[Any]]]:
        """Any sort: every candidate's keys read from its stored values, sorted here."""
        keyed = [sort_keys(src, sort) for src in self._sources(addresses)]
        return self._order(keyed, sort, after, limit)

    @staticmethod
    def _order(
        keyed: list[list[Any]], sort: tuple[SortKey, ...], after: list[Any] | None, limit: int
    ) -> list[tuple[str, list[Any]]]:
        try:
            if after is not None:
                keyed = [k for k in keyed if _compare(k, after, sort) > 0]
            keyed.sort(key=functools.cmp_to_key(functools.partial(_compare, sort=sort)))
        except TypeError as exc:  # a cursor's keys of other types than this sort's
            raise InvalidInput("the cursor does not belong to this query") from exc
        return [(k[-1], k) for k in keyed[:limit]]

    def _by_id(self, after: list[Any] | None, limit: int) -> list[tuple[str, list[Any]]]:
        query = self._q()
        found: list[str] = []
        if after is not None:
            if not isinstance(after[0], str):
                raise InvalidInput("the cursor does not belong to this query")
            hi, _ = _id_halves(after[0])
            # Ids sharing the cursor's first half (64 random bits: next to never) are
            # read whole and compared as text; the rest start past it.
            tied = self._all_hits(_and([query, self._int_equal("idhi", hi)]))
            found = sorted(i for i in self._ids(tied) if i > after[0])
            if hi == I64_MAX:
                return [(i, [i]) for i in found[:limit]]
            start = hi + 1
        else:
            start = I64_MIN
        ids = found + self._ids(self._from_id(query, start, limit))
        return [(i, [i]) for i in ids[:limit]]

    def _from_id(self, query: tantivy.Query, start: int, limit: int) -> list[Any]:
        """The first ``limit`` hits from id half ``start`` on, in id order. Ordering
        every hit by id is a pass over all of them (hundreds of thousands for a broad
        filter). Ids are uniform, so a window of the id space sized for a few times the
        page holds it for such a query: the window's assets (a range on one column),
        then the query among their ids. Windows grow fourfold while they come up short;
        past WINDOWS of them (a narrow query), the rest is ordered whole as before."""
        found: list[Any] = []
        width = max(1, (2**64 * 4 * limit) // max(self.searcher.num_docs, 1))
        low = start
        for _ in range(WINDOWS):
            high = min(low + width - 1, I64_MAX)
            span = self._int_range("idhi", low, high)
            inside = self.searcher.search(span, WINDOW_CAP, count=False).hits
            if len(inside) == WINDOW_CAP:
                break  # not so uniform after all: order the rest whole
            if inside:
                ids = Q.term_set_query(self.schema, "id", self._ids([a for _, a in inside]))
                found += self._ordered_by_id(_and([ids, query]), limit - len(found))
            low = high + 1
            if len(found) >= limit or high == I64_MAX:
                return found
            width *= 4
        rest = _and([query, self._int_range("idhi", low, None)])
        return found + self._ordered_by_id(rest, limit - len(found))

    def _ordered_by_id(self, query: tantivy.Query, limit: int) -> list[Any]:
        hits = self.searcher.search(
            query, limit, count=False, order_by_field="idhi", order=tantivy.Order.Asc
        ).hits
        return [addr for _, addr in hits]

    def _segments(self, key: SortKey) -> list[Segment] | None:
        """The hits in the order of a first sort key, as consecutive segments, each a
        (missing, kind) class of values; None when the key has no fast field."""
        query = self._q()
        field, desc = key.field, key.descending
        column = field.column or ""
        if column in DATE_FIELDS:
            return [Segment(0, 0, query, FastKey(DATE_FIELDS[column], None, micros, from_micros))]
        if column == "size":
            has = Q.exists_query("size")
            return [
                Segment(0, 0, _and([query, has]), FastKey("size", None, int)),
                Segment(1, 0, _and([query, _not(has)]), None),
            ]
        if column == "name":
            return [Segment(0, 1, query, FastKey("name_k", "name", prefix_key))]
        if field.key == "dc:title":
            has_text = Q.exists_query("title_s")
            present = self.compiler._text_terms("meta", [_key_prefix("p", "dc:title")])
            numbers = Segment(0, 0, _and([query, present, _not(has_text)]), None)
            texts = Segment(
                0, 1, _and([query, has_text]), FastKey("title_k", "title_s", prefix_key)
            )
            # (An empty array has no element, yet sorts by its JSON text, "[]".)
            missing = Segment(1, 0, _and([query, _not(present), _not(has_text)]), None)
            return [texts, numbers, missing] if desc else [numbers, texts, missing]
        return None

    def _by_segments(
        self, sort: tuple[SortKey, ...], after: list[Any] | None, limit: int
    ) -> list[tuple[str, list[Any]]] | None:
        segments = self._segments(sort[0])
        if segments is None:
            return None
        if after is not None:
            at = [i for i, g in enumerate(segments) if (g.missing, g.kind) == tuple(after[:2])]
            if not at:
                raise InvalidInput("the cursor does not belong to this query")
            segments = segments[at[0] :]
        found: list[tuple[str, list[Any]]] = []
        for i, segment in enumerate(segments):
            start = after if i == 0 else None
            need = limit - len(found)
            if segment.fast is None:
                found += self._sorted(self._all_hits(segment.query), sort, start, need)
            else:
                found += self._fast_segment(segment, segment.fast, sort, start, need)
            if len(found) >= limit:
                break
        return found[:limit]

    def _fast_segment(
        self,
        segment: Segment,
        fast: FastKey,
        sort: tuple[SortKey, ...],
        after: list[Any] | None,
        limit: int,
    ) -> list[tuple[str, list[Any]]]:
        """Tantivy's order on the key's fast field finds the page; the hits tied on the
        page's last value are read whole, so ties follow the later keys. A text key
        orders by its text, and ranges on a coarse integer prefix of it."""
        query = segment.query
        desc = sort[0].descending
        order = tantivy.Order.Desc if desc else tantivy.Order.Asc
        ordered: list[
            tuple[Any, tantivy.DocAddress]
        ] = []  # (key value, address), strictly past the cursor
        found: list[tuple[str, list[Any]]] = []
        rest = query
        start: int | None = None  # where the order resumes, past a cursor
        if after is not None:
            value = after[2]
            try:
                coarse = fast.coarse(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInput("the cursor does not belong to this query") from exc
            stored = value if fast.text is not None else coarse
            tied = self._all_hits(_and([query, fast.equal(self, value, stored=False)]))
            found = self._keyed(segment, [(stored, a) for a in tied], sort, after, limit)
            if len(found) >= limit:
                return found[:limit]
            if fast.text is not None:  # the cursor's coarse group, past its value
                group = _and([query, self._int_equal(fast.field, coarse)])
                count = _count(self.searcher, group)
                if count:
                    hits = self.searcher.search(
                        group, count, count=False, order_by_field=fast.text, order=order
                    ).hits
                    ordered = [(v, a) for v, a in hits if (v < value if desc else v > value)]
            beyond = (
                self._int_range(fast.field, None, coarse - 1)
                if desc
                else self._int_range(fast.field, coarse + 1, None)
            )
            rest = _and([query, beyond])
            start = coarse - 1 if desc else coarse + 1
        need = limit - len(found)
        ordered = ordered[:need]
        if len(ordered) < need:
            ordered += self._top_by(rest, need - len(ordered), fast, desc, start)
        if len(ordered) >= need:
            edge = ordered[-1][0]
            ordered = [(v, a) for v, a in ordered if v != edge]
            edged = self._all_hits(_and([query, fast.equal(self, edge, stored=True)]))
            ordered += [(edge, a) for a in edged]
        return found + self._keyed(segment, ordered, sort, None, need)

    def _top_by(
        self,
        query: tantivy.Query,
        limit: int,
        fast: FastKey,
        desc: bool,
        start: int | None = None,
    ) -> list[tuple[Any, tantivy.DocAddress]]:
        """The first ``limit`` hits of ``query`` in the key's order, with their values.
        Ordering every hit is a pass over all of them (11-25 ms for a broad filter at a
        million assets); an integer key is ordered in windows of its value range instead,
        from the end the order starts at, sized for four pages if values were spread
        evenly and growing eightfold while they come up short (values come in clusters:
        a bulk import's assets share their times), then the rest whole. Windows are
        closed ranges: Tantivy leads a query with a narrow range on a fast field (a
        closed window costs ~1.5 ms), not with one open at an end (a full pass). The
        range is an estimate kept for a while; values past its end (newer assets) are
        found first with a lone range, which costs next to nothing when there are none.
        ``start``: where the order resumes (a cursor's next value), when ``query``
        begins there. Text keys are ordered whole, and so are the hits of a query with
        words to match: few, as a rule, and then a pass over them is cheaper than even
        one empty window."""
        order = tantivy.Order.Desc if desc else tantivy.Order.Asc

        def ordered(q: tantivy.Query, n: int) -> list[tuple[Any, tantivy.DocAddress]]:
            hits = self.searcher.search(
                q, n, count=False, order_by_field=fast.text or fast.field, order=order
            ).hits
            return list(hits)

        if fast.text is not None or self._selective:
            return ordered(query, limit)
        bounds = self.bounds.of(self.searcher, fast.field)
        if bounds is None:
            return ordered(query, limit)
        low, high = bounds
        if desc and high < I64_MAX:  # the newest value, past a stale estimate
            past = ordered(self._int_range(fast.field, high + 1, None), 1)
            high = int(past[0][0]) if past else high
        elif not desc and low > I64_MIN:
            past = ordered(self._int_range(fast.field, None, low - 1), 1)
            low = int(past[0][0]) if past else low
        # Sized as if the index's values were spread evenly over its whole range.
        width = max(1, ((high - low) * 4 * limit) // max(self.searcher.num_docs, 1))
        low, high = self._ranged(fast.field, low, high)
        if start is not None:
            low, high = (low, min(high, start)) if desc else (max(low, start), high)
        if low > high:  # nothing of the query inside the estimate: its hits, whole
            return ordered(query, limit)
        found: list[tuple[Any, tantivy.DocAddress]] = []
        # Each window: [edge, outer] going down (desc), [outer, edge] going up.
        outer = high if desc else low
        edge = outer - width + 1 if desc else outer + width - 1
        searched = outer
        for _ in range(KEY_WINDOWS):
            edge = max(edge, low) if desc else min(edge, high)
            window = (
                self._int_range(fast.field, edge, outer)
                if desc
                else self._int_range(fast.field, outer, edge)
            )
            found += ordered(_and([query, window]), limit - len(found))
            searched = edge  # the inner end of what the windows have covered
            if len(found) >= limit or (edge <= low if desc else edge >= high):
                break  # a full page, or the (estimated) end of the range
            width *= KEY_GROWTH
            if desc:
                outer, edge = edge - 1, edge - width
            else:
                outer, edge = edge + 1, edge + width
        if len(found) >= limit or searched == (I64_MIN if desc else I64_MAX):
            return found
        # The rest past the last window (an estimate of the far end may be stale too).
        beyond = (
            self._int_range(fast.field, None, searched - 1)
            if desc
            else self._int_range(fast.field, searched + 1, None)
        )
        return found + ordered(_and([query, beyond]), limit - len(found))

    def _ranged(self, field: str, low: int, high: int) -> tuple[int, int]:
        """``low``..``high`` narrowed to the ranges the query itself puts on the integer
        ``field`` (its top-level ranges on a date or number column): windows outside
        them hold no hit (a date range over the middle of the span, sorted by date,
        would otherwise start with windows where no hit can be)."""
        node = self.query_node
        for child in node.children if isinstance(node, And) else (node,):
            if not isinstance(child, Range) or child.field.key is not None:
                continue
            column = child.field.column or ""
            if child.field.type == "date" and DATE_FIELDS.get(column) == field:
                found = _int_bounds(child.bounds, micros)
            elif child.field.type == "number" and NUMBER_FIELDS.get(column) == field:
                found = _int_bounds(child.bounds, lambda v: v)
            else:
                continue
            if found is not None:
                low, high = max(low, found[0]), min(high, found[1])
        return low, high

    def _keyed(
        self,
        segment: Segment,
        pairs: list[tuple[Any, tantivy.DocAddress]],
        sort: tuple[SortKey, ...],
        after: list[Any] | None,
        limit: int,
    ) -> list[tuple[str, list[Any]]]:
        """Hits with their first key's indexed value, in full sort order: with no later
        key, from fast fields alone (ids included); else from the stored values."""
        if len(sort) > 1 or segment.fast is None:
            return self._sorted([a for _, a in pairs], sort, after, limit)
        shown = segment.fast.shown
        ids = self._ids([a for _, a in pairs])
        keyed = [[0, segment.kind, shown(v), i] for (v, _), i in zip(pairs, ids, strict=True)]
        return self._order(keyed, sort, after, limit)

    def _int_equal(self, field: str, value: int) -> tantivy.Query:
        """Hits whose (indexed) integer ``field`` is ``value``: a term, where an equal
        range would read the whole column."""
        if not I64_MIN <= value <= I64_MAX:
            return _none()
        return Q.term_query(self.schema, field, value)

    def _int_range(self, field: str, lo: int | None, hi: int | None) -> tantivy.Query:
        return Q.range_query(self.schema, field, tantivy.FieldType.Integer, lo, hi)

    # -- relevance --------------------------------------------------------------------

    async def ranked(self, cap: int) -> list[str]:
        return await self._run(self._ranked, cap)

    def _ranked(self, cap: int) -> list[str]:
        return self._by_score(self.searcher.search(self._q(), max(cap, 1), count=False).hits)

    def _by_score(self, hits: list[Any]) -> list[str]:
        ids = self._ids([addr for _, addr in hits])
        scored = sorted(zip((-s for s, _ in hits), ids, strict=True))  # ties by id
        return [i for _, i in scored]

    async def counted_ranked(self, cap: int, count_to: int) -> tuple[int, list[str]]:
        """How many hits (all of them, whatever ``count_to``), and the ids of the best
        ``cap``: one pass (the first page of a relevance search without facets)."""
        return await self._run(self._counted_ranked, cap)

    def _counted_ranked(self, cap: int) -> tuple[int, list[str]]:
        result = self.searcher.search(self._q(), max(cap, 1), count=True)
        return int(result.count), self._by_score(result.hits)  # type: ignore[attr-defined]

    async def ranked_uuids(self, cap: int) -> bytes:
        return await self._run(self._ranked_uuids, cap)

    def _ranked_uuids(self, cap: int) -> bytes:
        """As _ranked, packed from the id fast fields without making a text per id (a
        relevance snapshot holds 10,000 of them)."""
        hits = self.searcher.search(self._q(), max(cap, 1), count=False).hits
        if not hits:
            return b""
        addresses = [addr for _, addr in hits]
        his = self.searcher.fast_field_values("idhi", addresses)
        los = self.searcher.fast_field_values("idlo", addresses)
        # The halves with their sign bit flipped: unsigned, they order as the id's text
        # does (and are its UUID's bytes). By score, best first, ties by id (as
        # _ranked orders them); lexsort's last key is its first.
        sign = np.uint64(1 << 63)
        xs = np.array(his, dtype=np.int64).view(np.uint64) ^ sign
        ys = np.array(los, dtype=np.int64).view(np.uint64) ^ sign
        scores = np.array([score for score, _ in hits], dtype=np.float64)
        order = np.lexsort((ys, xs, -scores))
        packed = np.empty((len(hits), 2), dtype=">u8")
        packed[:, 0] = xs[order]
        packed[:, 1] = ys[order]
        return packed.tobytes()

    async def among(self, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        return await self._run(self._among, ids)

    def _among(self, ids: list[str]) -> set[str]:
        query = _and([self._q(), Q.term_set_query(self.schema, "id", list(ids))])
        hits = self.searcher.search(query, len(ids), count=False).hits
        return set(self._ids([addr for _, addr in hits]))
