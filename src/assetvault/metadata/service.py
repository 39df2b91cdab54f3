"""The metadata envelope of the Author API and its updates.

``assetMetadata`` is the writable view (extracted metadata overlaid by users' writes);
``repositoryMetadata`` is what the system keeps. A PATCH is applied to the view, and
what differs from the extracted layer is stored as the users' layer, so user edits
survive the next extraction and removals stay removed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.reader import Reader
from assetvault.errors import InvalidInput, NotFound, PreconditionFailed
from assetvault.metadata import patch
from assetvault.tree import repository as tree_repo
from assetvault.tree.models import Node
from assetvault.tree.paths import ROOT, urn
from assetvault.tree.writes import Writes

MISSING = object()


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_layer(view: dict[str, Any], extracted: dict[str, Any]) -> dict[str, Any]:
    """What users changed relative to extraction: new or different values, and a null for
    every extracted property they removed."""
    layer = {k: v for k, v in view.items() if extracted.get(k, MISSING) != v}
    layer.update({k: None for k in extracted if k not in view})
    return layer


# AEM shows jcr:title, jcr:description and jcr:language under their dc:* names in the
# classic API, which writes both. A change of the dc:* name from any interface carries an
# existing jcr:* twin along (unless the same change names the twin itself), so no
# interface goes on showing the value another one replaced or removed.
JCR_TWINS = {
    "dc:title": "jcr:title",
    "dc:description": "jcr:description",
    "dc:language": "jcr:language",
}


def carry_twins(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out = dict(after)
    for dc, jcr in JCR_TWINS.items():
        if jcr not in before or before.get(dc) == after.get(dc):
            continue
        if before.get(jcr) != after.get(jcr):
            continue  # the change wrote the twin itself
        if dc in after:
            out[jcr] = after[dc]
        else:
            out.pop(jcr, None)
    return out


class MetadataService:
    def __init__(self, db: Database, writes: Writes, repository_id: str = "assetvault") -> None:
        self.db = db
        self.writes = writes
        self.repository_id = repository_id

    @staticmethod
    def _ancestor_paths(node: Node) -> list[str]:
        """Paths of the folders from /content/dam down to the node's direct parent."""
        parts = node.path[len(ROOT) :].strip("/").split("/")[:-1]
        return [ROOT] + [ROOT + "/" + "/".join(parts[: i + 1]) for i in range(len(parts))]

    def repository_metadata(self, node: Node, ancestors: list[str]) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "repo:name": node.name,
            "repo:path": node.path,
            "repo:assetId": node.urn,
            "repo:assetClass": (
                "contentFragment"
                if node.is_fragment
                else "file"
                if node.kind == "asset"
                else "directory"
            ),
            "repo:ancestors": ancestors,
            "repo:createDate": iso(node.created_at),
            "repo:createdBy": node.created_by,
            "repo:modifyDate": iso(node.modified_at),
            "repo:modifiedBy": node.modified_by,
            "repo:repositoryId": self.repository_id,
            "repo:etag": node.etag,
            "repo:version": f"{node.revision}",
            "isPublishedToAemPublish": node.published,
            "isPublishedToDynamicMedia": False,
        }
        if node.kind == "asset":
            meta["aem:published"] = node.published
        if node.published_at is not None:
            meta["lastPublishedToAemPublish"] = iso(node.published_at)
        if node.parent_id:
            meta["repo:parent"] = urn(node.parent_id)
        if node.kind == "asset":
            meta.update(
                {
                    "dc:format": node.mime_type,
                    "repo:size": node.size,
                    "dam:sha1": node.sha1,
                    "aem:assetState": node.asset_state,
                }
            )
            width = node.extracted.get("tiff:ImageWidth")
            height = node.extracted.get("tiff:ImageLength")
            if isinstance(width, int) and isinstance(height, int):
                meta["tiff:imageWidth"] = width
                meta["tiff:imageLength"] = height
            if node.processing_error:
                meta["aem:assetStateReason"] = node.processing_error
        return meta

    def _envelope(self, node: Node, ancestors: list[str]) -> dict[str, Any]:
        group = "assetMetadata" if node.kind == "asset" else "folderMetadata"
        return {
            "assetId": node.urn,
            group: node.asset_metadata if node.kind == "asset" else dict(node.properties),
            "repositoryMetadata": self.repository_metadata(node, ancestors),
        }

    async def envelopes(self, r: Reader, found: list[Node]) -> list[dict[str, Any]]:
        """Envelopes of many nodes, their ancestors read in one query."""
        wanted = sorted({p for node in found for p in self._ancestor_paths(node)})
        ids = await tree_repo.ids_at(r, wanted) if wanted else {}
        return [
            self._envelope(node, [urn(ids[p]) for p in self._ancestor_paths(node) if p in ids])
            for node in found
        ]

    async def envelope(self, node: Node) -> dict[str, Any]:
        async with self.db.reader() as r:
            (body,) = await self.envelopes(r, [node])
        return body

    async def asset_envelope(self, node_id: str) -> tuple[Node, dict[str, Any]]:
        """An asset and its envelope, read in one transaction (the API's hot path)."""
        async with self.db.reader() as r:
            node = await tree_repo.by_id(r, node_id, text=False)
            if node is None or node.kind != "asset":
                raise NotFound(f"asset {urn(node_id)} does not exist")
            (body,) = await self.envelopes(r, [node])
        return node, body

    async def patch(
        self, node_id: str, operations: Any, *, if_match: str, user: str
    ) -> tuple[Node, dict[str, Any]]:
        """Apply a JSON Patch to assetMetadata if ``if_match`` is ``*`` or the current
        ETag; atomic, and safe against concurrent writers (the revision is compared in
        the same UPDATE that writes). Returns the node and its new envelope, read in the
        same transaction."""
        async with self.writes.change(user) as ch:
            # Not its extracted text: a patch neither shows nor changes it.
            node = await tree_repo.by_id(ch.reader, node_id, lock=True, text=False)
            if node is None or node.kind != "asset":
                raise NotFound(f"asset {urn(node_id)} does not exist")
            if if_match.strip() != "*" and node.etag not in [
                t.strip() for t in if_match.split(",")
            ]:
                raise PreconditionFailed(
                    f"the asset has changed: its ETag is now {node.etag}, not {if_match}"
                )
            view = carry_twins(node.asset_metadata, patch.apply(node.asset_metadata, operations))
            if any(v is None for v in view.values()):
                raise InvalidInput("metadata values cannot be null; remove the property")
            updated = await ch.set_properties(
                node, user_layer(view, node.extracted), expected_revision=node.revision
            )
            (body,) = await self.envelopes(ch.reader, [updated])
            return updated, body
