"""The search index in the database itself: queries compiled to SQL over the tree's own
table, so the index is the data and is current in the same transaction as every change.
The scale-out backend (several API machines share it); the embedded default searches
the Tantivy index instead (tantivy.py), and SQLite's dialect stays for
``ASSETVAULT_SEARCH_BACKEND=database``.

SQLite: full text through the FTS5 table ``search_fts`` and metadata through JSON1. The
table is kept by triggers on ``nodes`` only while this backend uses it (migration 0017):
the first search on SQLite fills it from the tree and turns the triggers on
(``FullTextKeeper``), so the embedded default, which searches Tantivy, pays nothing for
it on its writes. PostgreSQL: the ``search_tsv`` column (kept by a trigger,
accents folded by ``unaccent``, GIN-indexed; weights A title, B name and subject, C
description, D the document's text), json operators for metadata, narrowed first by
jsonb containment on GIN indexes for terms, and facets grouped in SQL.

Every value from a request is a bound parameter; only names from the field registry and
fixed fragments are written into the SQL text.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from assetvault.adapters.database.connection import Connection
from assetvault.adapters.database.engine import Database
from assetvault.errors import InvalidInput
from assetvault.search.fields import NODE_URN_PREFIX, TEXT_KEYS, Field
from assetvault.search.query import (
    And,
    Exists,
    FacetRequest,
    Match,
    Not,
    Or,
    QueryNode,
    Range,
    Scalar,
    SortKey,
    Term,
    parse_date,
    positive_matches,
)

TRUE, FALSE = "1=1", "1=0"
COMPARATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# Columns that are never NULL for an asset: sorted without a missing-value key, so an
# index can give the order.
NOT_NULL = {"id", "name", "path", "created_at", "modified_at", "created_by", "modified_by"}
# The metadata key each full-text column holds (but name and body).
TEXT_COLUMN_KEYS = {column: key for key, column in TEXT_KEYS.items()}
# The tsvector weight of each full-text column (PostgreSQL, migration 0010).
TSV_WEIGHTS = {"title": "A", "name": "B", "subject": "B", "description": "C", "body": "D"}
# bm25 weights of the full-text columns (name, title, description, subject, body).
WEIGHTS = {"name": 5.0, "title": 10.0, "description": 2.0, "subject": 5.0, "body": 1.0}
# A match with at most this many full-text hits drives the join (SQLite); a commoner one
# is left to the planner, as one condition among the others.
DRIVER_MAX_ROWS = 20_000
FTS_JOIN = "search_fts CROSS JOIN nodes AS n ON n.doc_id = search_fts.rowid"
# Sort columns with an index and never NULL for an asset: walking the index gives the
# order, and stops after a page.
WALKABLE = {"name", "created_at", "modified_at"}
# Metadata keys SQLite keeps a generated, indexed column of, for sorting (migration 0006).
SORT_COLUMNS = {"dc:title": "title"}
# The columns facets count (asset_status is generated from the metadata view).
FACET_COLUMNS = {
    "repositoryMetadata.dc:format": "n.mime_type",
    "assetMetadata.dam:assetStatus": "n.asset_status",
}


class Statement:
    """SQL text and its bound parameters, built together."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"


@dataclass(frozen=True)
class Scored:
    """How a dialect ranks by relevance: FROM clause, its condition, the order, and
    whether the FROM clause already applies the match nodes."""

    source: str
    condition: str
    order: str
    applies_matches: bool


class Dialect(ABC):
    """The SQL that differs between SQLite and PostgreSQL."""

    def string(self, sql: str) -> str:
        """A string expression compared and ordered by code point."""
        return sql

    def date_param(self, moment: datetime) -> datetime | str:
        return moment

    def number(self, st: Statement, value: int | float) -> str:
        return st.bind(value)

    def unindexed(self, column: str) -> str:
        """The column, in a form the planner will not look up through an index."""
        return column

    @abstractmethod
    def meta_value(self, st: Statement, key: str) -> str:
        """The metadata view's JSON value of ``key``: users' layer over extracted."""
        ...

    @abstractmethod
    def meta_scalar_keys(self, st: Statement, key: str) -> list[str]:
        """Expressions that order the view's value of ``key`` (never all NULL for a
        present value)."""
        ...

    @abstractmethod
    def elements(self, value: str) -> str:
        """FROM clause: one row (alias e) per element of a JSON value (the value itself
        when it is not an array), read by element_is/element_number/element_string."""
        ...

    @abstractmethod
    def element_is(self, kind: str) -> str: ...

    @abstractmethod
    def element_number(self) -> str: ...

    @abstractmethod
    def element_string(self) -> str: ...

    @abstractmethod
    def match(self, st: Statement, node: Match, probe: bool = False) -> str:
        """The predicate of a full-text match; ``probe``: checked row by row (while
        walking an index), rather than against the set of all its hits."""
        ...

    def meta_sort_keys(self, st: Statement, key: str) -> list[str] | None:
        """Sort expressions of a metadata key the database keeps a column for, if any."""
        return None

    def meta_term_index(self, st: Statement, key: str, values: tuple[Scalar, ...]) -> str | None:
        """A looser condition an index can answer, implied by a term on ``key``."""
        return None

    async def driver(self, conn: Connection, matches: list[Match]) -> Match | None:
        """The match to drive the join from, if one is selective enough."""
        return None

    def source(self, st: Statement, driver: Match | None) -> tuple[str, str]:
        """FROM clause (nodes as n) and the condition it adds."""
        return "nodes AS n", TRUE

    @abstractmethod
    def scored(self, st: Statement, matches: list[Match]) -> Scored: ...

    def walks(self, sort: tuple[SortKey, ...]) -> bool:
        """Whether walking the first sort key's index beats filtering first, for a
        result too large to sort (the engine's own planner decides otherwise)."""
        return False


def _path(key: str) -> str:
    if '"' in key:
        raise InvalidInput(f"field names cannot contain a double quote: {key!r}")
    return f'$."{key}"'


def fts_query(node: Match) -> str:
    """An FTS5 query string: each word a quoted phrase (a prefix with *), all required,
    restricted to the node's columns."""
    star = "*" if node.prefix else ""
    body = (" OR " if node.any_word else " AND ").join(f'"{w}"{star}' for w in node.tokens)
    return f"{{{' '.join(node.columns)}}} : ({body})"


class SqliteDialect(Dialect):
    def unindexed(self, column: str) -> str:
        return f"+{column}"  # SQLite's documented way to rule an index out

    def date_param(self, moment: datetime) -> datetime | str:
        # The format SQLAlchemy stores DateTime in on SQLite (UTC, no offset).
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    @staticmethod
    def _view(st: Statement, key: str, read: str) -> str:
        """``read`` (with {doc} and {path}) of the key in the users' layer if it is there
        (a null included), else in the extracted one."""
        path = st.bind(_path(key))
        users = read.format(doc="n.properties", path=path)
        extracted = read.format(doc="n.extracted", path=path)
        return (
            f"(CASE WHEN json_type(n.properties, {path}) IS NULL THEN {extracted} ELSE {users} END)"
        )

    def meta_value(self, st: Statement, key: str) -> str:
        return self._view(st, key, "{doc} -> {path}")  # as JSON text

    def meta_scalar_keys(self, st: Statement, key: str) -> list[str]:
        # As an SQL value: SQLite orders numbers before text by itself.
        return [self._view(st, key, "json_extract({doc}, {path})")]

    def elements(self, value: str) -> str:
        return f"json_each({value}) AS e"

    def element_is(self, kind: str) -> str:
        return {
            "string": "e.type = 'text'",
            "number": "e.type IN ('integer', 'real')",
            "true": "e.type = 'true'",
            "false": "e.type = 'false'",
            "present": "e.type <> 'null'",
        }[kind]

    def element_number(self) -> str:
        return "e.value"

    def element_string(self) -> str:
        return "e.value"

    def match(self, st: Statement, node: Match, probe: bool = False) -> str:
        if not node.tokens:
            return FALSE
        q = st.bind(fts_query(node))
        if probe:
            return (
                "EXISTS (SELECT 1 FROM search_fts WHERE search_fts MATCH "
                f"{q} AND search_fts.rowid = n.doc_id)"
            )
        return f"n.doc_id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH {q})"

    def meta_sort_keys(self, st: Statement, key: str) -> list[str] | None:
        column = SORT_COLUMNS.get(key)
        return [f"n.{column}"] if column else None

    async def driver(self, conn: Connection, matches: list[Match]) -> Match | None:
        best: tuple[int, Match] | None = None
        for node in matches:
            st = Statement()
            q = st.bind(fts_query(node))
            sql = (
                f"SELECT count(*) FROM (SELECT 1 FROM search_fts WHERE search_fts MATCH {q} "
                f"LIMIT {DRIVER_MAX_ROWS + 1}) AS c"
            )
            hits = int((await conn.execute(text(sql), st.params)).scalar_one())
            if hits <= DRIVER_MAX_ROWS and (best is None or hits < best[0]):
                best = (hits, node)
        return best[1] if best else None

    def source(self, st: Statement, driver: Match | None) -> tuple[str, str]:
        if driver is None:
            return "nodes AS n", TRUE
        # CROSS JOIN: SQLite keeps this order, the few full-text hits outermost.
        return FTS_JOIN, f"search_fts MATCH {st.bind(fts_query(driver))}"

    def scored(self, st: Statement, matches: list[Match]) -> Scored:
        q = st.bind(" AND ".join(f"({fts_query(m)})" for m in matches))
        weights = ", ".join(str(w) for w in WEIGHTS.values())
        # bm25: lower is better.
        return Scored(FTS_JOIN, f"search_fts MATCH {q}", f"bm25(search_fts, {weights})", True)

    def walks(self, sort: tuple[SortKey, ...]) -> bool:
        if not sort:
            return False
        field = sort[0].field
        return field.column in WALKABLE or (field.key is not None and field.key in SORT_COLUMNS)


class PostgresDialect(Dialect):
    def string(self, sql: str) -> str:
        return f'({sql}) COLLATE "C"'

    def number(self, st: Statement, value: int | float) -> str:
        return f"CAST({st.bind(Decimal(str(value)))} AS numeric)"

    def meta_value(self, st: Statement, key: str) -> str:
        k = st.bind(key)
        return (
            f"(CASE WHEN json_typeof(n.properties -> CAST({k} AS text)) IS NULL "
            f"THEN n.extracted -> CAST({k} AS text) ELSE n.properties -> CAST({k} AS text) END)"
        )

    def meta_scalar_keys(self, st: Statement, key: str) -> list[str]:
        # SQLite's order: numbers (numerically; true and false are 1 and 0) before
        # strings (by code point).
        value = self.meta_value(st, key)
        kind = f"json_typeof({value})"
        return [
            f"(CASE WHEN {kind} IN ('number', 'boolean') THEN 0 "
            f"WHEN {kind} IS NULL OR {kind} = 'null' THEN NULL ELSE 1 END)",
            f"(CASE WHEN {kind} = 'number' THEN CAST(CAST({value} AS text) AS numeric) "
            f"WHEN {kind} = 'boolean' THEN CAST(CAST({value} AS text) = 'true' AS integer) END)",
            f"(CASE WHEN {kind} NOT IN ('number', 'boolean') "
            f"THEN ({value} #>> '{{}}') END) COLLATE \"C\"",
        ]

    def elements(self, value: str) -> str:
        return (
            f"json_array_elements(CASE WHEN json_typeof({value}) = 'array' THEN {value} "
            f"ELSE json_build_array({value}) END) AS e(val)"
        )

    def element_is(self, kind: str) -> str:
        return {
            "string": "json_typeof(e.val) = 'string'",
            "number": "json_typeof(e.val) = 'number'",
            "true": "(json_typeof(e.val) = 'boolean' AND CAST(e.val AS text) = 'true')",
            "false": "(json_typeof(e.val) = 'boolean' AND CAST(e.val AS text) = 'false')",
            "present": "json_typeof(e.val) <> 'null'",
        }[kind]

    def element_number(self) -> str:
        return "CAST(CAST(e.val AS text) AS numeric)"

    def element_string(self) -> str:
        return "(e.val #>> '{}') COLLATE \"C\""

    def meta_term_index(self, st: Statement, key: str, values: tuple[Scalar, ...]) -> str | None:
        # A match in either layer of the view contains {key: value} or {key: [value]}:
        # the GIN (jsonb_path_ops) indexes of migration 0010 find those rows.
        parts = []
        for value in values:
            for shape in ({key: value}, {key: [value]}):
                doc = st.bind(json.dumps(shape))
                for layer in ("properties", "extracted"):
                    parts.append(f"CAST(n.{layer} AS jsonb) @> CAST({doc} AS jsonb)")
        return "(" + " OR ".join(parts) + ")"

    def _document(self, st: Statement, columns: tuple[str, ...]) -> str:
        """The words of these columns, computed row by row (the trigger's recipe)."""
        parts = []
        for column in columns:
            if column == "name":
                parts.append("n.name")
            elif column == "body":
                parts.append("coalesce(n.extracted_text, '')")
            else:
                key = TEXT_COLUMN_KEYS[column]
                parts.append(f"coalesce({self.meta_value(st, key)} #>> '{{}}', '')")
        # Split on everything but letters and digits first, as the query side does
        # (PostgreSQL's parser would keep "kiwi.jpg" as one file-name token).
        document = " || ' ' || ".join(parts)
        return (
            "to_tsvector('simple', regexp_replace(lower(assetvault_fold("
            f"{document})), '[^[:alnum:]]+', ' ', 'g'))"
        )

    @staticmethod
    def _tsquery(node: Match, labels: str = "") -> str:
        star = "*" if node.prefix else ""
        suffix = f":{star}{labels}" if star or labels else ""
        joiner = " | " if node.any_word else " & "
        return joiner.join(f"'{w}'{suffix}" for w in node.tokens)  # words hold no quotes

    def match(self, st: Statement, node: Match, probe: bool = False) -> str:
        if not node.tokens:
            return FALSE
        labels = "".join(sorted({TSV_WEIGHTS[c] for c in node.columns}))
        if len(labels) == 4:
            labels = ""  # every column: no label needed
        q = st.bind(self._tsquery(node, labels))
        found = f"n.search_tsv @@ to_tsquery('simple', {q})"
        named = set(node.columns) & {"name", "subject"}
        if len(named) == 1:
            # Name and subject share weight B: the index narrows, the row decides.
            exact = st.bind(self._tsquery(node))
            found += f" AND {self._document(st, node.columns)} @@ to_tsquery('simple', {exact})"
        return f"({found})"

    def scored(self, st: Statement, matches: list[Match]) -> Scored:
        # Weights {D, C, B, A}: body 1, description 2, name and subject 5, title 10.
        ranks = [
            f"ts_rank('{{0.1, 0.2, 0.5, 1.0}}', n.search_tsv, "
            f"to_tsquery('simple', {st.bind(self._tsquery(m))}))"
            for m in matches
        ]
        return Scored("nodes AS n", TRUE, "(" + " + ".join(ranks) + ") DESC", False)


def _view(key: str) -> str:
    """SQL for the metadata view's value of ``key`` in a row of nodes (as the triggers
    of migrations 0005 and 0017 compute it): the users' layer over the extracted one."""
    path = f"'$.\"{key}\"'"
    return (
        f"(CASE WHEN json_type(properties, {path}) IS NULL "
        f"THEN json_extract(extracted, {path}) ELSE json_extract(properties, {path}) END)"
    )


FTS_FILL = (
    "INSERT INTO search_fts(rowid, name, title, description, subject, body) "
    f"SELECT doc_id, name, {_view('dc:title')}, {_view('dc:description')}, "
    f"{_view('dc:subject')}, extracted_text FROM nodes WHERE doc_id IS NOT NULL"
)
FTS_KEPT = "SELECT kept FROM search_fts_state"


class FullTextKeeper:
    """SQLite's full-text table, kept by its triggers only while ``search_fts_state``
    says so (migration 0017: nothing keeps it on the embedded default). ``ensure``
    before a search's read transaction begins: a table not kept is filled from the tree
    as it is, and kept from then on, in one write transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.fills = 0  # tables filled by this process (what a test counts)

    async def ensure(self) -> None:
        async with self.db.reader() as r:
            row = await r.fetch_one(FTS_KEPT)
        if row is not None and row[0]:
            return
        async with self.db.write() as conn:
            kept = (await conn.exec_driver_sql(FTS_KEPT)).scalar()
            if kept:  # another process filled it meanwhile
                return
            await conn.exec_driver_sql("DELETE FROM search_fts")
            await conn.exec_driver_sql(FTS_FILL)
            await conn.exec_driver_sql("UPDATE search_fts_state SET kept = 1")
        self.fills += 1


class SqlSearchIndex:
    def __init__(self, dialect: Dialect, keeper: FullTextKeeper | None = None) -> None:
        self.dialect = dialect
        self.keeper = keeper

    @classmethod
    def for_database(cls, db: Database) -> SqlSearchIndex:
        if db.is_sqlite:
            return cls(SqliteDialect(), FullTextKeeper(db))
        return cls(PostgresDialect())

    async def prepare(
        self, conn: Connection, query: And, scopes: tuple[QueryNode, ...] = ()
    ) -> PreparedSql:
        """The query planned once for all the statements of one search: the folders its
        repo:ancestors terms name, and whether a full-text match drives the join.

        On SQLite the full-text table is made current first, before this transaction
        reads anything (its snapshot begins with its first read)."""
        if self.keeper is not None:
            await self.keeper.ensure()
        folders = await _folder_paths(conn, [query, *scopes])
        driver = await self.dialect.driver(conn, positive_matches(query))
        return PreparedSql(self, conn, query, folders, driver)

    # -- compiling -----------------------------------------------------------------------

    def where(
        self,
        st: Statement,
        node: QueryNode,
        folders: dict[str, str],
        skip: tuple[Match, ...] = (),
        plain: bool = False,
    ) -> str:
        """The predicate of ``node`` on assets. Nodes in ``skip`` (by identity) are left
        out, the join applying them; ``plain`` keeps indexes off the filter columns, so
        that the sort's index gives the order."""
        kind = self.dialect.unindexed("n.kind") if plain else "n.kind"
        return f"{kind} = 'asset' AND " + self._node(st, node, folders, skip, plain)

    def _node(
        self,
        st: Statement,
        node: QueryNode,
        folders: dict[str, str],
        skip: tuple[Match, ...],
        plain: bool,
    ) -> str:
        def each(children: tuple[QueryNode, ...], joiner: str) -> str:
            return joiner.join(self._node(st, c, folders, skip, plain) for c in children)

        if isinstance(node, And):
            return "(" + each(node.children, " AND ") + ")"
        if isinstance(node, Or):
            return "(" + each(node.children, " OR ") + ")"
        if isinstance(node, Not):
            return f"(NOT ({each(node.children, ' OR ')}))"
        if isinstance(node, Match):
            if node.match_all or any(node is s for s in skip):
                return TRUE
            return self.dialect.match(st, node, probe=plain)
        if node.field.key is not None:
            return self._metadata(st, node)
        if isinstance(node, Term):
            return self._column_term(st, node, folders, plain)
        if isinstance(node, Range):
            return self._column_range(st, node, plain)
        return self._column_exists(node.field)

    def _column_term(self, st: Statement, node: Term, folders: dict[str, str], plain: bool) -> str:
        field = node.field
        column = f"n.{field.column}"
        if plain:
            column = self.dialect.unindexed(column)
        if field.type == "ancestors":
            parts = [
                f"({self.dialect.string(column)} > {st.bind(folders[i] + '/')} AND "
                f"{self.dialect.string(column)} < {st.bind(folders[i] + '0')})"  # '0' follows '/'
                for i in _urn_ids(node.values)
                if i in folders
            ]
            return "(" + " OR ".join(parts) + ")" if parts else FALSE
        if field.type == "urn":
            values: list[Any] = _urn_ids(node.values)
        elif field.type == "number":
            values = [v for v in node.values if _is_number(v)]
        elif field.type == "date":
            values = [parse_date(v, f"term {field.name}") for v in node.values]
        else:
            values = [v for v in node.values if isinstance(v, str)]
        if not values:
            return FALSE
        return f"{column} IN ({', '.join(self._value(st, v) for v in values)})"

    def _column_range(self, st: Statement, node: Range, plain: bool) -> str:
        field = node.field
        column = f"n.{field.column}"
        if plain:
            column = self.dialect.unindexed(column)
        if field.type == "string":
            column = self.dialect.string(column)
        parts = [f"{column} {COMPARATORS[op]} {self._value(st, v)}" for op, v in node.bounds]
        return "(" + " AND ".join(parts) + ")"

    def _value(self, st: Statement, value: Scalar | datetime) -> str:
        """A request's value as a parameter of the type its column compares with."""
        if isinstance(value, datetime):
            return st.bind(self.dialect.date_param(value))
        if isinstance(value, str):
            return st.bind(value)
        return self.dialect.number(st, value)

    @staticmethod
    def _column_exists(field: Field) -> str:
        if field.type == "ancestors":
            return TRUE
        return f"n.{field.column} IS NOT NULL"

    def _metadata(self, st: Statement, node: Term | Range | Exists) -> str:
        """A predicate on the elements of an assetMetadata value (a scalar is its own
        only element): true when some element satisfies it."""
        assert node.field.key is not None
        d = self.dialect
        value = d.meta_value(st, node.field.key)
        if isinstance(node, Exists):
            test = d.element_is("present")
        elif isinstance(node, Term):
            tests = []
            strings = [v for v in node.values if isinstance(v, str)]
            numbers = [v for v in node.values if _is_number(v)]
            if strings:
                listed = ", ".join(st.bind(v) for v in strings)
                tests.append(f"({d.element_is('string')} AND {d.element_string()} IN ({listed}))")
            if numbers:
                listed = ", ".join(self._value(st, v) for v in numbers)
                tests.append(f"({d.element_is('number')} AND {d.element_number()} IN ({listed}))")
            for flag in {v for v in node.values if isinstance(v, bool)}:
                tests.append(d.element_is("true" if flag else "false"))
            test = "(" + " OR ".join(tests) + ")"
        else:
            numeric = not isinstance(node.bounds[0][1], str)
            element = d.element_number() if numeric else d.element_string()
            tests = [d.element_is("number" if numeric else "string")]
            tests += [f"{element} {COMPARATORS[op]} {self._value(st, v)}" for op, v in node.bounds]
            test = "(" + " AND ".join(tests) + ")"
        exact = f"EXISTS (SELECT 1 FROM {d.elements(value)} WHERE {test})"
        narrow = (
            d.meta_term_index(st, node.field.key, node.values) if isinstance(node, Term) else None
        )
        return exact if narrow is None else f"({narrow} AND {exact})"

    def sort_keys(self, st: Statement, sort: tuple[SortKey, ...]) -> list[tuple[str, bool]]:
        """(expression, descending) pairs; a missing value sorts last either way."""
        keys: list[tuple[str, bool]] = []
        for key in sort:
            field = key.field
            if field.key is not None:
                values = self.dialect.meta_sort_keys(
                    st, field.key
                ) or self.dialect.meta_scalar_keys(st, field.key)
                keys.append((_missing(values[0]), False))
                keys += [(v, key.descending) for v in values]
                continue
            column = f"n.{field.column}"
            if field.column not in NOT_NULL:
                keys.append((_missing(column), False))
            if field.type == "string" or field.type == "urn":
                column = self.dialect.string(column)
            keys.append((column, key.descending))
        return keys

    def after(self, st: Statement, keys: list[tuple[str, bool]], after: list[Any]) -> str:
        """Rows strictly after the position ``after`` in the order of ``keys``. A NULL in
        ``after`` means every row still tied on the earlier keys is NULL there too (the
        missing-value key comes first), so it compares as equal and never as greater.

        The first key also gets a plain bound: the range an index on it can walk from
        the position on. The disjunction itself is kept away from indexes, or SQLite
        would gather its branches through several index lookups and sort them all."""
        d = self.dialect
        clauses = []
        for i, (expr, desc) in enumerate(keys):
            equal = [
                f"{d.unindexed(e)} IS NULL" if v is None else f"{d.unindexed(e)} = {st.bind(v)}"
                for (e, _), v in zip(keys[:i], after[:i], strict=True)
            ]
            if after[i] is None:
                continue
            greater = f"{d.unindexed(expr)} {'<' if desc else '>'} {st.bind(after[i])}"
            clauses.append("(" + " AND ".join([*equal, greater]) + ")")
        if not clauses:
            return FALSE
        first, desc = keys[0]
        bound = (
            "" if after[0] is None else f"{first} {'<=' if desc else '>='} {st.bind(after[0])} AND "
        )
        return f"({bound}({' OR '.join(clauses)}))"


def _missing(expr: str) -> str:
    """A sort key that puts rows without a value last (ascending, whatever the order)."""
    return f"(CASE WHEN {expr} IS NULL THEN 1 ELSE 0 END)"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _urn_ids(values: tuple[Any, ...]) -> list[str]:
    prefix = NODE_URN_PREFIX
    return [v[len(prefix) :] for v in values if isinstance(v, str) and v.startswith(prefix)]


async def _folder_paths(conn: Connection, nodes: list[QueryNode]) -> dict[str, str]:
    """Paths of the folders named by repo:ancestors terms, looked up once."""
    ids: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, And | Or | Not):
            stack.extend(node.children)
        elif isinstance(node, Term) and node.field.type == "ancestors":
            ids.update(_urn_ids(node.values))
    if not ids:
        return {}
    st = Statement()
    listed = ", ".join(st.bind(i) for i in sorted(ids))
    sql = f"SELECT id, path FROM nodes WHERE kind = 'folder' AND id IN ({listed})"
    return {r.id: r.path for r in await conn.execute(text(sql), st.params)}


class PreparedSql:
    """One query's statements: the total and facets, a page, a ranking, a recheck."""

    concurrent = False  # one connection: one statement at a time

    def __init__(
        self,
        index: SqlSearchIndex,
        conn: Connection,
        query: And,
        folders: dict[str, str],
        driver: Match | None,
    ) -> None:
        self.index = index
        self.conn = conn
        self.query = query
        self.folders = folders
        self.driver = driver

    def _base(self, st: Statement, plain: bool = False) -> tuple[str, str]:
        source, condition = self.index.dialect.source(st, self.driver)
        skip = (self.driver,) if self.driver else ()
        where = self.index.where(st, self.query, self.folders, skip, plain)
        return source, where if condition == TRUE else f"{where} AND {condition}"

    async def summary(
        self, facets: tuple[FacetRequest, ...], cap: int
    ) -> tuple[int, list[list[tuple[Any, int]]]]:
        """How many assets match (counting to ``cap`` at least) and each facet's
        (value, count) buckets over all of them, most first: one pass over the hits."""
        st = Statement()
        source, where = self._base(st)
        if not facets:
            sql = (
                f"SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT {int(cap)}) AS c"
            )
            return int((await self.conn.execute(text(sql), st.params)).scalar_one()), []
        # One pass: hits grouped by every facet's value (and scope), summed up here. The
        # groups are few: formats times statuses.
        columns: list[str] = []
        positions: list[tuple[int, int | None]] = []  # per facet: its value and scope columns
        for facet in facets:
            value_at, scope_at = len(columns), None
            columns.append(FACET_COLUMNS[facet.field])
            if facet.scope is not None:
                scope_at = len(columns)
                scope = self.index.where(st, facet.scope, self.folders)
                columns.append(f"(CASE WHEN {scope} THEN 1 ELSE 0 END)")
            positions.append((value_at, scope_at))
        groups = ", ".join(str(i + 1) for i in range(len(columns)))
        sql = f"SELECT {', '.join(columns)}, count(*) FROM {source} WHERE {where} GROUP BY {groups}"
        rows = (await self.conn.execute(text(sql), st.params)).all()
        total = sum(int(row[-1]) for row in rows)
        buckets: list[list[tuple[Any, int]]] = []
        for facet, (value_at, scope_at) in zip(facets, positions, strict=True):
            counts: dict[Any, int] = {}
            for row in rows:
                value = row[value_at]
                if value is None or (scope_at is not None and not row[scope_at]):
                    continue
                if facet.values is None or value in facet.values:
                    counts[value] = counts.get(value, 0) + int(row[-1])
            ordered = sorted(counts.items(), key=lambda b: (-b[1], str(b[0])))
            buckets.append(ordered[: facet.size])
        return total, buckets

    async def page(
        self,
        sort: tuple[SortKey, ...],
        after: list[Any] | None,
        limit: int,
        *,
        large: bool,
    ) -> list[tuple[str, list[Any]]]:
        """Up to ``limit`` hits in sort order (ties broken by id) after the position
        ``after``; each as (id, its sort keys). ``large``: the result is too large to
        sort, so the sort's index, where it has one, gives the order."""
        st = Statement()
        plain = large and self.driver is None and self.index.dialect.walks(sort)
        source, where = self._base(st, plain)
        d = self.index.dialect
        keys = [*self.index.sort_keys(st, sort), (d.string("n.id"), False)]
        if after is not None:
            if len(after) != len(keys):
                raise InvalidInput("the cursor does not belong to this query")
            where += " AND " + self.index.after(st, keys, after)
        columns = ", ".join(f"{expr} AS k{i}" for i, (expr, _) in enumerate(keys))
        order = ", ".join(f"k{i} {'DESC' if desc else 'ASC'}" for i, (_, desc) in enumerate(keys))
        sql = f"SELECT {columns} FROM {source} WHERE {where} ORDER BY {order} LIMIT {int(limit)}"
        rows = (await self.conn.execute(text(sql), st.params)).all()
        return [(row[-1], list(row)) for row in rows]

    async def counted_ranked(self, cap: int, count_to: int) -> tuple[int, list[str]]:
        """The total and the ranking, one statement after the other (one connection)."""
        counted, _ = await self.summary((), count_to)
        return counted, await self.ranked(cap)

    async def ranked(self, cap: int) -> list[str]:
        """Ids of up to ``cap`` hits, most relevant first."""
        st = Statement()
        matches = positive_matches(self.query)
        scored = self.index.dialect.scored(st, matches)
        skip = tuple(matches) if scored.applies_matches else ()
        where = self.index.where(st, self.query, self.folders, skip)
        if scored.condition != TRUE:
            where += f" AND {scored.condition}"
        sql = (
            f"SELECT n.id FROM {scored.source} WHERE {where} "
            f"ORDER BY {scored.order}, n.id LIMIT {int(cap)}"
        )
        return list((await self.conn.execute(text(sql), st.params)).scalars())

    async def ranked_uuids(self, cap: int) -> bytes:
        return b"".join(uuid.UUID(i).bytes for i in await self.ranked(cap))

    async def among(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` match now."""
        if not ids:
            return set()
        st = Statement()
        # A few ids: checked one by one, the full text probed per row.
        where = self.index.where(st, self.query, self.folders, plain=True)
        listed = ", ".join(st.bind(i) for i in ids)
        sql = f"SELECT n.id FROM nodes AS n WHERE n.id IN ({listed}) AND {where}"
        return set((await self.conn.execute(text(sql), st.params)).scalars())
