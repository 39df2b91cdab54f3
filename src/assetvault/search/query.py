"""A search request, parsed and checked: every fault is an InvalidInput that names it,
so a malformed request never reaches the index.

Query nodes are objects with exactly one key: ``and``/``or``/``not`` (arrays of nodes),
``match``, ``term``, ``range`` or ``exists``. The top-level ``query`` array is ANDed;
``not`` matches what none of its children match.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from assetvault.errors import InvalidInput
from assetvault.search.fields import ALL_TEXT_COLUMNS, FACET_FIELDS, Field, resolve
from assetvault.tree.models import parse_instant

MAX_ITEMS = 5  # query items, and children of one and/or/not
MAX_DEPTH = 8
MAX_LIMIT = 50
DEFAULT_LIMIT = 20
MAX_FACETS = 2
MAX_FACET_SIZE = 1000
DEFAULT_FACET_SIZE = 100
MAX_TERM_VALUES = 100
MAX_TEXT = 10_000
RANGE_OPS = ("gt", "gte", "lt", "lte")
REQUEST_KEYS = {"query", "sort", "orderBy", "limit", "cursor", "projectedFields", "facets"}
FACET_KEYS = {"type", "id", "field", "size", "sort", "scope", "includes"}

Scalar = str | int | float | bool


@dataclass(frozen=True)
class And:
    children: tuple[QueryNode, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[QueryNode, ...]


@dataclass(frozen=True)
class Not:
    children: tuple[QueryNode, ...]  # matches when none of them does


@dataclass(frozen=True)
class Match:
    tokens: tuple[str, ...]  # folded words, all of which must occur; () = match all
    columns: tuple[str, ...]  # full-text columns searched
    prefix: bool = False  # each word matches as a prefix (operator "startsWith")
    match_all: bool = False
    any_word: bool = False  # one word suffices (a document as the query: more is better)


@dataclass(frozen=True)
class Term:
    field: Field
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Range:
    field: Field
    bounds: tuple[tuple[str, Scalar | datetime], ...]  # (op, value), op in RANGE_OPS


@dataclass(frozen=True)
class Exists:
    field: Field


QueryNode = And | Or | Not | Match | Term | Range | Exists


@dataclass(frozen=True)
class SortKey:
    field: Field
    descending: bool = False


@dataclass(frozen=True)
class FacetRequest:
    id: str
    field: str  # canonical name, one of FACET_FIELDS' values
    size: int = DEFAULT_FACET_SIZE
    values: tuple[str, ...] | None = None  # includes.values: only these buckets
    scope: QueryNode | None = None


@dataclass(frozen=True)
class Projection:
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchRequest:
    query: And
    sort: tuple[SortKey, ...] = ()
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    projection: Projection = field(default_factory=Projection)
    facets: tuple[FacetRequest, ...] = ()


# Words as SQLite's unicode61 tokenizer sees them: runs of letters and digits, case- and
# accent-folded. The same rule reads a match's text, so both sides agree.
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    if text.isascii():  # nothing to fold but case (the indexer's usual case, and fast)
        return _WORD.findall(text.lower())
    folded = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in folded if not unicodedata.combining(c))
    return _WORD.findall(stripped)


def _reject_unknown(value: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidInput(f"{what} {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def parse_request(body: Any) -> SearchRequest:
    if not isinstance(body, dict):
        raise InvalidInput("the search request must be a JSON object")
    _reject_unknown(body, REQUEST_KEYS, "unknown request field(s)")
    if "query" not in body:
        raise InvalidInput("query is required: an array of 1 to 5 query objects")
    items = _node_list(body["query"], "query", depth=0)
    return SearchRequest(
        query=And(items),
        sort=_sort(body.get("sort"), body.get("orderBy")),
        limit=_limit(body.get("limit", DEFAULT_LIMIT)),
        cursor=_cursor(body.get("cursor")),
        projection=_projection(body.get("projectedFields")),
        facets=_facets(body.get("facets")),
    )


def _node_list(value: Any, where: str, depth: int) -> tuple[QueryNode, ...]:
    if not isinstance(value, list):
        raise InvalidInput(f"{where} must be an array of query objects")
    if not 1 <= len(value) <= MAX_ITEMS:
        raise InvalidInput(f"{where} must hold 1 to {MAX_ITEMS} items, not {len(value)}")
    return tuple(_node(v, f"{where}[{i}]", depth) for i, v in enumerate(value))


def _node(value: Any, where: str, depth: int) -> QueryNode:
    if depth >= MAX_DEPTH:
        raise InvalidInput(f"{where}: queries may nest at most {MAX_DEPTH} levels")
    if not isinstance(value, dict) or len(value) != 1:
        raise InvalidInput(
            f"{where} must be an object with exactly one key: "
            "and, or, not, match, term, range or exists"
        )
    ((kind, arg),) = value.items()
    here = f"{where}.{kind}"
    if kind in ("and", "or", "not"):
        children = _node_list(arg, here, depth + 1)
        if kind == "and":
            return And(children)
        return Or(children) if kind == "or" else Not(children)
    if kind == "match":
        return _match(arg, here)
    if kind == "term":
        return _term(arg, here)
    if kind == "range":
        return _range(arg, here)
    if kind == "exists":
        if not isinstance(arg, dict) or set(arg) != {"field"}:
            raise InvalidInput(f'{here} must be {{"field": "<field>"}}')
        return Exists(resolve(arg["field"], where=here))
    raise InvalidInput(
        f"{where}: unknown query kind {kind!r}; use and, or, not, match, term, range or exists"
    )


def _match(arg: Any, where: str) -> Match:
    if not isinstance(arg, dict):
        raise InvalidInput(f"{where} must be an object with a text")
    _reject_unknown(arg, {"text", "fields", "mode", "operator"}, f"{where}: unknown key(s)")
    text = arg.get("text")
    if not isinstance(text, str):
        raise InvalidInput(f"{where}.text must be a string")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{where}.text is longer than {MAX_TEXT} characters")
    mode = arg.get("mode", "FULLTEXT")
    if mode not in ("FULLTEXT", "HYBRID"):
        raise InvalidInput(f"{where}.mode must be FULLTEXT or HYBRID, not {mode!r}")
    operator = arg.get("operator", "matches")
    if operator not in ("matches", "startsWith"):
        raise InvalidInput(f"{where}.operator must be matches or startsWith, not {operator!r}")
    columns: tuple[str, ...] = ALL_TEXT_COLUMNS
    if "fields" in arg:
        if mode != "FULLTEXT":
            raise InvalidInput(f"{where}.fields is only allowed with mode FULLTEXT")
        names = arg["fields"]
        if not isinstance(names, list) or not names:
            raise InvalidInput(f"{where}.fields must be a non-empty array of field names")
        resolved = [resolve(n, where=f"{where}.fields") for n in names]
        for f in resolved:
            if f.text_column is None:
                raise InvalidInput(
                    f"{where}.fields: {f.name} is not full-text searchable; use "
                    "repositoryMetadata.repo:name, assetMetadata.dc:title, "
                    "assetMetadata.dc:description or assetMetadata.dc:subject"
                )
        columns = tuple(dict.fromkeys(f.text_column for f in resolved if f.text_column))
    if text.strip() in ("", "*"):
        return Match((), columns, match_all=True)
    return Match(tuple(words(text)), columns, prefix=operator == "startsWith")


def _scalar(value: Any, where: str) -> Scalar:
    if isinstance(value, str | bool | int | float) and value == value:  # NaN is no value
        return value
    raise InvalidInput(f"{where}: values must be strings, numbers or booleans")


def _term(arg: Any, where: str) -> Term:
    if not isinstance(arg, dict) or len(arg) != 1:
        raise InvalidInput(f'{where} must be {{"<field>": [value, ...]}} with one field')
    ((name, values),) = arg.items()
    field_ = resolve(name, where=where)
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_TERM_VALUES:
        raise InvalidInput(
            f"{where}.{name} must be an array of 1 to {MAX_TERM_VALUES} values (even for one)"
        )
    return Term(field_, tuple(_scalar(v, f"{where}.{name}") for v in values))


def parse_date(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        try:
            return parse_instant(value)
        except ValueError:
            pass
    raise InvalidInput(f"{where}: {value!r} is not an ISO 8601 date")


def _range(arg: Any, where: str) -> Range:
    if not isinstance(arg, dict) or len(arg) != 1:
        raise InvalidInput(f'{where} must be {{"<field>": {{"gte": ..., "lt": ...}}}}')
    ((name, spec),) = arg.items()
    field_ = resolve(name, where=where)
    here = f"{where}.{name}"
    if not isinstance(spec, dict) or not spec or set(spec) - set(RANGE_OPS):
        raise InvalidInput(f"{here} must be an object of gt, gte, lt and/or lte")
    if field_.type in ("urn", "ancestors"):
        raise InvalidInput(f"{here}: {field_.name} cannot be compared with a range")
    bounds: list[tuple[str, Scalar | datetime]] = []
    for op in RANGE_OPS:
        if op not in spec:
            continue
        value = spec[op]
        if field_.type == "date":
            bounds.append((op, parse_date(value, f"{here}.{op}")))
        elif field_.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise InvalidInput(f"{here}.{op}: {value!r} is not a number")
            bounds.append((op, value))
        elif field_.type == "string":
            if not isinstance(value, str):
                raise InvalidInput(f"{here}.{op}: {value!r} is not a string")
            bounds.append((op, value))
        else:
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise InvalidInput(f"{here}.{op}: {value!r} is not a number or a string")
            bounds.append((op, value))
    kinds = {type(v) is str for _, v in bounds}
    if len(kinds) > 1:
        raise InvalidInput(f"{here}: bounds must be all numbers or all strings")
    return Range(field_, tuple(bounds))


def _sort(sort: Any, order_by: Any) -> tuple[SortKey, ...]:
    if sort is not None and order_by is not None:
        raise InvalidInput("send sort or orderBy, not both")
    keys: list[SortKey] = []
    if sort is not None:
        if not isinstance(sort, list) or len(sort) > MAX_ITEMS:
            raise InvalidInput(f"sort must be an array of at most {MAX_ITEMS} {{field, order}}")
        for i, item in enumerate(sort):
            where = f"sort[{i}]"
            if not isinstance(item, dict) or "field" not in item or set(item) - {"field", "order"}:
                raise InvalidInput(f'{where} must be {{"field": "<field>", "order": "ASC"|"DESC"}}')
            order = item.get("order", "ASC")
            if not isinstance(order, str) or order.upper() not in ("ASC", "DESC"):
                raise InvalidInput(f"{where}.order must be ASC or DESC, not {order!r}")
            keys.append(SortKey(_sort_field(item["field"], where), order.upper() == "DESC"))
    elif order_by is not None:
        if not isinstance(order_by, str) or not order_by.strip():
            raise InvalidInput(
                'orderBy must be a string such as "repositoryMetadata.repo:name asc"'
            )
        for i, part in enumerate(order_by.split(",")):
            where = f"orderBy item {i + 1}"
            tokens = part.split()
            if not 1 <= len(tokens) <= 2:
                raise InvalidInput(f"{where} must be '<field> [asc|desc]', not {part.strip()!r}")
            order = tokens[1].lower() if len(tokens) == 2 else "asc"
            if order not in ("asc", "desc", "dec"):  # "dec": as Adobe's guide spells it
                raise InvalidInput(f"{where}: order must be asc or desc, not {tokens[1]!r}")
            keys.append(SortKey(_sort_field(tokens[0], where), order != "asc"))
    if len(keys) > MAX_ITEMS:
        raise InvalidInput(f"sort by at most {MAX_ITEMS} fields")
    return tuple(keys)


def _sort_field(name: Any, where: str) -> Field:
    field_ = resolve(name, where=where)
    if field_.type == "ancestors":
        raise InvalidInput(f"{where}: results cannot be sorted by {field_.name}")
    return field_


def _limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}, not {value!r}")
    return value


def _cursor(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInput("cursor must be a non-empty string from a previous response")
    return value


def _field_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(f"{where} must be an array of field names")
    return tuple(value)


def _projection(value: Any) -> Projection:
    if value is None:
        return Projection()
    if not isinstance(value, dict) or set(value) - {"includes", "excludes"}:
        raise InvalidInput('projectedFields must be {"includes": [...]} and/or {"excludes": [...]}')
    return Projection(
        includes=_field_list(value.get("includes", []), "projectedFields.includes"),
        excludes=_field_list(value.get("excludes", []), "projectedFields.excludes"),
    )


def _facets(value: Any) -> tuple[FacetRequest, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_FACETS:
        raise InvalidInput(f"facets must be an array of at most {MAX_FACETS} facet requests")
    facets: list[FacetRequest] = []
    for i, item in enumerate(value):
        where = f"facets[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where} must be an object")
        _reject_unknown(item, FACET_KEYS, f"{where}: unknown key(s)")
        if item.get("type", "CATEGORY") != "CATEGORY":
            raise InvalidInput(f"{where}.type must be CATEGORY, not {item.get('type')!r}")
        wanted = item.get("field")
        name = FACET_FIELDS.get(wanted) if isinstance(wanted, str) else None
        if name is None:
            raise InvalidInput(
                f"{where}.field must be dc:format or dam:assetStatus, not {wanted!r}"
            )
        facet_id = item.get("id", name)
        if not isinstance(facet_id, str) or not facet_id:
            raise InvalidInput(f"{where}.id must be a non-empty string")
        size = item.get("size", DEFAULT_FACET_SIZE)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_FACET_SIZE:
            raise InvalidInput(f"{where}.size must be an integer from 1 to {MAX_FACET_SIZE}")
        if item.get("sort", "COUNT_DESC") != "COUNT_DESC":
            raise InvalidInput(f"{where}.sort must be COUNT_DESC")
        values = None
        if "includes" in item:
            inc = item["includes"]
            if not isinstance(inc, dict) or set(inc) != {"values"}:
                raise InvalidInput(f'{where}.includes must be {{"values": [...]}}')
            values = _field_list(inc["values"], f"{where}.includes.values")
        scope = _node(item["scope"], f"{where}.scope", 0) if "scope" in item else None
        facets.append(FacetRequest(facet_id, name, size, values, scope))
    if len({f.id for f in facets}) != len(facets):
        raise InvalidInput("facets: each facet needs its own id")
    return tuple(facets)


def positive_matches(query: And) -> list[Match]:
    """Match nodes that every hit satisfies (top level, through nested ands): what
    relevance is scored on."""
    found: list[Match] = []
    stack: list[QueryNode] = list(query.children)
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            stack.extend(node.children)
        elif isinstance(node, Match) and not node.match_all and node.tokens:
            found.append(node)  # a text without words ("!!!") matches nothing: no driver
    return found
