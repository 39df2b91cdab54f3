"""The fields a search can name: dotted group paths as in the metadata envelope
(``repositoryMetadata.repo:name``, ``assetMetadata.dc:title``, ...).

Repository fields are columns of the tree with a fixed type; assetMetadata fields are
keys of the asset's metadata view (extracted metadata overlaid by users' writes) and can
hold any JSON value, arrays included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from assetvault.errors import InvalidInput
from assetvault.tree.paths import URN_PREFIX

FieldType = Literal["string", "number", "date", "urn", "ancestors", "any"]
# How values of "urn" fields (assetId, ancestors) name a node: this prefix and its id.
NODE_URN_PREFIX = URN_PREFIX

ASSET_GROUP = "assetMetadata"
REPOSITORY_GROUP = "repositoryMetadata"


@dataclass(frozen=True)
class Field:
    name: str  # canonical dotted name
    type: FieldType
    column: str | None = None  # a column of the tree (repository fields)
    key: str | None = None  # a key of the metadata view (assetMetadata fields)
    # The full-text column that holds this field, if a match may name it.
    text_column: str | None = None


def _repo(key: str, type_: FieldType, column: str, text_column: str | None = None) -> Field:
    return Field(f"{REPOSITORY_GROUP}.{key}", type_, column=column, text_column=text_column)


REPOSITORY_FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        _repo("repo:name", "string", "name", text_column="name"),
        _repo("repo:path", "string", "path"),
        _repo("repo:assetId", "urn", "id"),
        _repo("repo:parent", "urn", "parent_id"),
        _repo("repo:ancestors", "ancestors", "path"),
        _repo("dc:format", "string", "mime_type"),
        _repo("repo:size", "number", "size"),
        _repo("repo:createDate", "date", "created_at"),
        _repo("repo:modifyDate", "date", "modified_at"),
        _repo("repo:createdBy", "string", "created_by"),
        _repo("repo:modifiedBy", "string", "modified_by"),
        _repo("aem:assetState", "string", "asset_state"),
        _repo("dam:sha1", "string", "sha1"),
    )
}
ASSET_ID = REPOSITORY_FIELDS["repositoryMetadata.repo:assetId"]

# assetMetadata keys that full-text search reads, and the index column of each.
TEXT_KEYS = {"dc:title": "title", "dc:description": "description", "dc:subject": "subject"}
# The columns a match without ``fields`` searches: every text column, the document's
# own text (a PDF's words) included.
ALL_TEXT_COLUMNS = ("name", "title", "description", "subject", "body")

# Facets the interface offers, by every name a client may use for them.
FACET_FIELDS = {
    "dc:format": "repositoryMetadata.dc:format",
    "repositoryMetadata.dc:format": "repositoryMetadata.dc:format",
    "dam:assetStatus": "assetMetadata.dam:assetStatus",
    "assetMetadata.dam:assetStatus": "assetMetadata.dam:assetStatus",
}


def resolve(name: object, *, where: str) -> Field:
    """The field a dotted name refers to; InvalidInput naming ``where`` otherwise."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where}: a field name must be a non-empty string")
    if name in ("assetId", "repo:assetId"):
        return ASSET_ID
    group, dot, key = name.partition(".")
    if not dot or not key:
        raise InvalidInput(
            f"{where}: field {name!r} must be a dotted group path such as "
            "'repositoryMetadata.repo:name' or 'assetMetadata.dc:title'"
        )
    if group == REPOSITORY_GROUP:
        field = REPOSITORY_FIELDS.get(name)
        if field is None:
            known = ", ".join(sorted(REPOSITORY_FIELDS))
            raise InvalidInput(f"{where}: unknown field {name!r}; repository fields are {known}")
        return field
    if group == ASSET_GROUP:
        if '"' in key:
            raise InvalidInput(f"{where}: field names cannot contain a double quote: {name!r}")
        return Field(name, "any", key=key, text_column=TEXT_KEYS.get(key))
    raise InvalidInput(
        f"{where}: unknown field group {group!r} in {name!r}; "
        f"use {REPOSITORY_GROUP}.<name> or {ASSET_GROUP}.<name>"
    )
