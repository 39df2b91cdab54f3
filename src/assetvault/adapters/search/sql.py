"""The search index of the embedded default: queries compiled to SQL over the tree's own
table, so the index is the data and is current in the same transaction as every change.

SQLite: full text through the FTS5 table ``search_fts`` (kept by triggers on ``nodes``)
and metadata through JSON1. PostgreSQL: tsvector expressions and json operators over the
same columns (no index of its own yet: that comes with the scale-out work).

Every value from a request is a bound parameter; only names from the field registry and
fixed fragments are written into the SQL text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from assetvault.errors import InvalidInput
from assetvault.search.fields import Field
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
)
from assetvault.tree.paths import URN_PREFIX

TRUE, FALSE = "1=1", "1=0"
COMPARATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# Columns that are never NULL for an asset: sorted without a missing-value key, so an
# index can give the order.
NOT_NULL = {"id", "name", "path", "created_at", "modified_at", "created_by", "modified_by"}
# bm25 weights of the full-text columns (name, title, description, subject, body).
WEIGHTS = {"name": 5.0, "title": 10.0, "description": 2.0, "subject": 5.0, "body": 1.0}


class Statement:
    """SQL text and its bound parameters, built together."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"


class Dialect:
    """The SQL that differs between SQLite and PostgreSQL."""

    def string(self, sql: str) -> str:
        """A string expression compared and ordered by code point."""
        return sql

    def date_param(self, moment: datetime) -> Any:
        return moment

    def number(self, st: Statement, value: int | float) -> str:
        return st.bind(value)

    def meta_value(self, st: Statement, key: str) -> str:
        """The metadata view's JSON value of ``key``: users' layer over extracted."""
        raise NotImplementedError

    def meta_scalar_keys(self, st: Statement, key: str) -> list[str]:
        """Expressions that order the view's value of ``key`` (never all NULL for a
        present value)."""
        raise NotImplementedError

    def meta_facet(self, st: Statement, key: str) -> str:
        raise NotImplementedError

    def elements(self, value: str) -> str:
        """FROM clause: one row (alias e, columns kind and val) per element of a JSON
        value (the value itself when it is not an array)."""
        raise NotImplementedError

    def element_is(self, kind: str) -> str:
        raise NotImplementedError

    def element_number(self) -> str:
        raise NotImplementedError

    def element_string(self) -> str:
        raise NotImplementedError

    def match(self, st: Statement, node: Match) -> str:
        raise NotImplementedError

    def scored(self, st: Statement, matches: list[Match]) -> tuple[str, str, str]:
        """(join clause adding column score, score expression, order direction)."""
        raise NotImplementedError


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
    def date_param(self, moment: datetime) -> Any:
        # The format SQLAlchemy stores DateTime in on SQLite (UTC, no offset).
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def meta_value(self, st: Statement, key: str) -> str:
        path = st.bind(_path(key))
        return (
            f"(CASE WHEN json_type(n.properties, {path}) IS NULL "
            f"THEN n.extracted -> {path} ELSE n.properties -> {path} END)"
        )

    def _scalar(self, st: Statement, key: str) -> str:
        path = st.bind(_path(key))
        return (
            f"(CASE WHEN json_type(n.properties, {path}) IS NULL "
            f"THEN json_extract(n.extracted, {path}) ELSE json_extract(n.properties, {path}) END)"
        )

    def meta_scalar_keys(self, st: Statement, key: str) -> list[str]:
        return [self._scalar(st, key)]  # SQLite orders numbers before text by itself

    def meta_facet(self, st: Statement, key: str) -> str:
        return self._scalar(st, key)

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

    def match(self, st: Statement, node: Match) -> str:
        if not node.tokens:
            return FALSE
        q = st.bind(fts_query(node))
        return f"n.doc_id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH {q})"

    def scored(self, st: Statement, matches: list[Match]) -> tuple[str, str, str]:
        q = st.bind(" AND ".join(f"({fts_query(m)})" for m in matches))
        weights = ", ".join(str(w) for w in WEIGHTS.values())
        join = (
            f"JOIN (SELECT rowid AS doc, bm25(search_fts, {weights}) AS score "
            f"FROM search_fts WHERE search_fts MATCH {q}) AS f ON f.doc = n.doc_id"
        )
        return join, "f.score", "ASC"  # bm25: lower is better


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

    def meta_facet(self, st: Statement, key: str) -> str:
        value = self.meta_value(st, key)
        return f"(CASE WHEN json_typeof({value}) <> 'null' THEN {value} #>> '{{}}' END)"

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

    def _document(self, st: Statement, columns: tuple[str, ...]) -> str:
        parts = []
        for column in columns:
            if column == "name":
                parts.append("n.name")
            elif column == "body":
                parts.append("coalesce(n.extracted_text, '')")
            else:
                key = {"title": "dc:title", "description": "dc:description"}.get(
                    column, "dc:subject"
                )
                parts.append(f"coalesce({self.meta_value(st, key)} #>> '{{}}', '')")
        # Split on everything but letters and digits first, as SQLite's unicode61 does
        # (PostgreSQL's parser would keep "kiwi.jpg" as one file-name token).
        document = " || ' ' || ".join(parts)
        return f"to_tsvector('simple', regexp_replace({document}, '[^[:alnum:]]+', ' ', 'g'))"

    @staticmethod
    def _tsquery(node: Match) -> str:
        star = ":*" if node.prefix else ""
        joiner = " | " if node.any_word else " & "
        return joiner.join(f"'{w}'{star}" for w in node.tokens)  # words hold no quotes

    def match(self, st: Statement, node: Match) -> str:
        if not node.tokens:
            return FALSE
        q = st.bind(self._tsquery(node))
        return f"{self._document(st, node.columns)} @@ to_tsquery('simple', {q})"

    def scored(self, st: Statement, matches: list[Match]) -> tuple[str, str, str]:
        ranks = [
            f"ts_rank({self._document(st, m.columns)}, "
            f"to_tsquery('simple', {st.bind(self._tsquery(m))}))"
            for m in matches
        ]
        return "", "(" + " + ".join(ranks) + ")", "DESC"


class SqlSearchIndex:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    @classmethod
    def for_database(cls, is_sqlite: bool) -> SqlSearchIndex:
        return cls(SqliteDialect() if is_sqlite else PostgresDialect())

    # -- the interface -------------------------------------------------------------------

    async def count(self, conn: AsyncConnection, query: And, cap: int) -> int:
        st = Statement()
        where = await self._where(conn, st, query)
        sql = f"SELECT count(*) FROM (SELECT 1 FROM nodes n WHERE {where} LIMIT {int(cap)}) AS c"
        return int((await conn.execute(text(sql), st.params)).scalar_one())

    async def facet(
        self, conn: AsyncConnection, query: And, facet: FacetRequest
    ) -> list[tuple[Any, int]]:
        st = Statement()
        scoped = And((*query.children, facet.scope)) if facet.scope else query
        where = await self._where(conn, st, scoped)
        if facet.field == "repositoryMetadata.dc:format":
            value = "n.mime_type"
        else:
            value = self.dialect.meta_facet(st, facet.field.split(".", 1)[1])
        only = ""
        if facet.values is not None:
            only = f" AND {value} IN ({', '.join(st.bind(v) for v in facet.values)})"
        sql = (
            f"SELECT {value} AS value, count(*) AS hits FROM nodes n "
            f"WHERE {where} AND {value} IS NOT NULL{only} "
            f"GROUP BY 1 ORDER BY hits DESC, 1 LIMIT {int(facet.size)}"
        )
        rows = await conn.execute(text(sql), st.params)
        return [(r.value, int(r.hits)) for r in rows]

    async def page(
        self,
        conn: AsyncConnection,
        query: And,
        sort: tuple[SortKey, ...],
        after: list[Any] | None,
        limit: int,
    ) -> list[tuple[str, list[Any]]]:
        st = Statement()
        where = await self._where(conn, st, query)
        keys = [*self._sort_keys(st, sort), (self.dialect.string("n.id"), False)]
        if after is not None:
            if len(after) != len(keys):
                raise InvalidInput("the cursor does not belong to this query")
            where += " AND " + self._after(st, keys, after)
        columns = ", ".join(f"{expr} AS k{i}" for i, (expr, _) in enumerate(keys))
        order = ", ".join(f"k{i} {'DESC' if desc else 'ASC'}" for i, (_, desc) in enumerate(keys))
        sql = f"SELECT {columns} FROM nodes n WHERE {where} ORDER BY {order} LIMIT {int(limit)}"
        rows = (await conn.execute(text(sql), st.params)).all()
        return [(row[-1], list(row)) for row in rows]

    async def ranked(self, conn: AsyncConnection, query: And, cap: int) -> list[str]:
        st = Statement()
        join, score, direction = self.dialect.scored(st, positive_matches(query))
        where = await self._where(conn, st, query)
        sql = (
            f"SELECT n.id FROM nodes n {join} WHERE {where} "
            f"ORDER BY {score} {direction}, n.id LIMIT {int(cap)}"
        )
        return list((await conn.execute(text(sql), st.params)).scalars())

    async def among(self, conn: AsyncConnection, query: And, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        st = Statement()
        where = await self._where(conn, st, query)
        listed = ", ".join(st.bind(i) for i in ids)
        sql = f"SELECT n.id FROM nodes n WHERE n.id IN ({listed}) AND {where}"
        return set((await conn.execute(text(sql), st.params)).scalars())

    # -- compiling -----------------------------------------------------------------------

    async def _where(self, conn: AsyncConnection, st: Statement, query: And) -> str:
        folders = await self._folder_paths(conn, query)
        return f"n.kind = 'asset' AND {self._node(st, query, folders)}"

    @staticmethod
    async def _folder_paths(conn: AsyncConnection, query: And) -> dict[str, str]:
        """Paths of the folders named by repo:ancestors terms, looked up once."""
        ids: set[str] = set()
        stack: list[QueryNode] = [query]
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

    def _node(self, st: Statement, node: QueryNode, folders: dict[str, str]) -> str:
        if isinstance(node, And):
            return "(" + " AND ".join(self._node(st, c, folders) for c in node.children) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self._node(st, c, folders) for c in node.children) + ")"
        if isinstance(node, Not):
            inner = " OR ".join(self._node(st, c, folders) for c in node.children)
            return f"(NOT ({inner}))"
        if isinstance(node, Match):
            return TRUE if node.match_all else self.dialect.match(st, node)
        if node.field.key is not None:
            return self._metadata(st, node)
        if isinstance(node, Term):
            return self._column_term(st, node, folders)
        if isinstance(node, Range):
            return self._column_range(st, node)
        return self._column_exists(node.field)

    def _column_term(self, st: Statement, node: Term, folders: dict[str, str]) -> str:
        field = node.field
        column = f"n.{field.column}"
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
            values = [
                self.dialect.date_param(parse_date(v, f"term {field.name}")) for v in node.values
            ]
        else:
            values = [v for v in node.values if isinstance(v, str)]
        if not values:
            return FALSE
        if field.type == "number":
            return f"{column} IN ({', '.join(self.dialect.number(st, v) for v in values)})"
        return f"{column} IN ({', '.join(st.bind(v) for v in values)})"

    def _column_range(self, st: Statement, node: Range) -> str:
        field = node.field
        column = f"n.{field.column}"
        if field.type == "string":
            column = self.dialect.string(column)
        parts = []
        for op, value in node.bounds:
            if isinstance(value, datetime):
                bound = st.bind(self.dialect.date_param(value))
            elif isinstance(value, str):
                bound = st.bind(value)
            else:
                bound = self.dialect.number(st, value)
            parts.append(f"{column} {COMPARATORS[op]} {bound}")
        return "(" + " AND ".join(parts) + ")"

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
                listed = ", ".join(d.number(st, v) for v in numbers)
                tests.append(f"({d.element_is('number')} AND {d.element_number()} IN ({listed}))")
            for flag in {v for v in node.values if isinstance(v, bool)}:
                tests.append(d.element_is("true" if flag else "false"))
            test = "(" + " OR ".join(tests) + ")"
        else:
            numeric = not isinstance(node.bounds[0][1], str)
            element = d.element_number() if numeric else d.element_string()
            tests = [d.element_is("number" if numeric else "string")]
            tests += [
                f"{element} {COMPARATORS[op]} "
                + (st.bind(v) if isinstance(v, str) else d.number(st, v))  # type: ignore[arg-type]
                for op, v in node.bounds
            ]
            test = "(" + " AND ".join(tests) + ")"
        return f"EXISTS (SELECT 1 FROM {d.elements(value)} WHERE {test})"

    def _sort_keys(self, st: Statement, sort: tuple[SortKey, ...]) -> list[tuple[str, bool]]:
        """(expression, descending) pairs; a missing value sorts last either way."""
        keys: list[tuple[str, bool]] = []
        for key in sort:
            field = key.field
            if field.key is not None:
                values = self.dialect.meta_scalar_keys(st, field.key)
                keys.append((f"(CASE WHEN {values[0]} IS NULL THEN 1 ELSE 0 END)", False))
                keys += [(v, key.descending) for v in values]
                continue
            column = f"n.{field.column}"
            if field.column not in NOT_NULL:
                keys.append((f"(CASE WHEN {column} IS NULL THEN 1 ELSE 0 END)", False))
            if field.type == "string" or field.type == "urn":
                column = self.dialect.string(column)
            keys.append((column, key.descending))
        return keys

    def _after(self, st: Statement, keys: list[tuple[str, bool]], after: list[Any]) -> str:
        """Rows strictly after the position ``after`` in the order of ``keys``. A NULL in
        ``after`` means every row still tied on the earlier keys is NULL there too (the
        missing-value key comes first), so it compares as equal and never as greater."""
        clauses = []
        for i, (expr, desc) in enumerate(keys):
            equal = [
                f"{e} IS NULL" if v is None else f"{e} = {st.bind(v)}"
                for (e, _), v in zip(keys[:i], after[:i], strict=True)
            ]
            if after[i] is None:
                continue
            greater = f"{expr} {'<' if desc else '>'} {st.bind(after[i])}"
            clauses.append("(" + " AND ".join([*equal, greater]) + ")")
        return "(" + " OR ".join(clauses) + ")" if clauses else FALSE


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _urn_ids(values: tuple[Any, ...]) -> list[str]:
    return [v[len(URN_PREFIX) :] for v in values if isinstance(v, str) and v.startswith(URN_PREFIX)]
